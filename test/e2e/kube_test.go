package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubeExport: an applied App with two revisions splitting its
// traffic is exported as Kubernetes objects (plain and Knative, each
// with the App's NetworkPolicy), its secret only with --include-secrets,
// and the export imports back into the same App.
func TestKubeExport(t *testing.T) {
	d := env.daemon
	must(t, d, "secret", "create", "kubexdb", "--from-literal", "password=kx-s3cret")
	defer d.Run("", "secret", "rm", "kubexdb")
	defer d.Run("", "delete", "app", "kubex")
	if r := applyYAML(t, d, helloApp("kubex", "1", "")); r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	eventually(t, 30*time.Second, "kubex ready", appReady(t, d, "kubex"))
	second := helloApp("kubex", "2", `  ingress: {host: kubex.example.com, external: true}
  resources: {memory: 64Mi, pids: 100}
  traffic: [{revision: kubex-00001, percent: 80}, {latest: true, percent: 20, tag: next}]
  network: {allowFrom: [{app: kubexpeer}]}
`)
	second = strings.Replace(second, `env: [{name: VERSION, value: "2"}]`, `env: [{name: VERSION, value: "2"}, {name: DB_PASSWORD, secretRef: kubexdb/password}]`, 1)
	if r := applyYAML(t, d, second); r.Code != 0 {
		t.Fatalf("apply revision 2: %s", r)
	}
	eventually(t, 30*time.Second, "kubex revision ready", appReady(t, d, "kubex"))

	r := d.Run("", "kube", "export", "kubex", "--namespace", "shop")
	if r.Code != 0 {
		t.Fatalf("export: %s", r)
	}
	for _, want := range []string{
		"kind: Deployment", "name: kubex-00001", "kind: HorizontalPodAutoscaler", "kind: HTTPRoute",
		"weight: 80", "weight: 20", "namespace: shop", "@sha256:", "skiff.dev/pids: \"100\"",
		"secretKeyRef:", "- kubex.example.com", "kind: NetworkPolicy", "skiff.dev/app: kubexpeer",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("export lacks %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "kind: Secret") || strings.Contains(r.Stdout, base64.StdEncoding.EncodeToString([]byte("kx-s3cret"))) {
		t.Fatalf("the secret was exported without --include-secrets:\n%s", r.Stdout)
	}
	for _, want := range []string{"spec.env: secret kubexdb is not exported", "spec.resources.pids"} {
		if !strings.Contains(r.Stderr, want) {
			t.Fatalf("no warning %q: %s", want, r.Stderr)
		}
	}
	plain := filepath.Join(t.TempDir(), "kubex.k8s.yaml")
	if err := os.WriteFile(plain, []byte(r.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}

	out := must(t, d, "kube", "export", "kubex", "--include-secrets")
	if !strings.Contains(out, "kind: Secret") || !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("kx-s3cret"))) {
		t.Fatalf("--include-secrets exported no Secret with the value:\n%s", out)
	}

	var list struct {
		Items []struct {
			APIVersion string         `json:"apiVersion"`
			Kind       string         `json:"kind"`
			Spec       map[string]any `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(must(t, d, "kube", "export", "kubex", "--flavor", "knative", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].APIVersion != "serving.knative.dev/v1" || list.Items[1].Kind != "NetworkPolicy" {
		t.Fatalf("knative export: %+v", list.Items)
	}
	traffic, _ := json.Marshal(list.Items[0].Spec["traffic"])
	if !strings.Contains(string(traffic), `"revisionName":"kubex-00001"`) || !strings.Contains(string(traffic), `"tag":"next"`) {
		t.Fatalf("knative traffic: %s", traffic)
	}

	out = must(t, d, "kube", "import", "-f", plain, "-o", "yaml")
	for _, want := range []string{"name: kubex\n", "revision: kubex-00001", "percent: 80", "tag: next", "secretRef: kubexdb/password", "pids: 100", "host: kubex.example.com", "image: hello\n", "- app: kubexpeer"} {
		if !strings.Contains(out, want) {
			t.Fatalf("import of the export lacks %q:\n%s", want, out)
		}
	}
	fails(t, d, []string{"unknown flavor \"helm\""}, "kube", "export", "kubex", "--flavor", "helm")
	fails(t, d, []string{"app \"nosuchapp\" not found"}, "kube", "export", "nosuchapp")
}

// TestKubeImportApplies: a Deployment written for Kubernetes, and an
// Azure Container Apps definition, become Apps on the daemon that serve
// requests; what has no App counterpart is named on stderr.
func TestKubeImportApplies(t *testing.T) {
	d := env.daemon
	dir := t.TempDir()
	manifest := filepath.Join(dir, "deploy.yaml")
	os.WriteFile(manifest, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: kubimp, labels: {app: kubimp}}
spec:
  replicas: 1
  selector: {matchLabels: {app: kubimp}}
  template:
    metadata: {labels: {app: kubimp}}
    spec:
      containers:
        - name: web
          image: hello
          ports: [{name: http, containerPort: 8080}]
          env: [{name: VERSION, value: imported}]
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
      nodeSelector: {disktype: ssd}
---
apiVersion: v1
kind: Service
metadata: {name: kubimp}
spec:
  selector: {app: kubimp}
  ports: [{port: 80, targetPort: http}]
`), 0o644)
	defer d.Run("", "delete", "app", "kubimp")
	r := d.Run("", "kube", "import", "-f", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "app/kubimp applied") {
		t.Fatalf("import: %s", r)
	}
	if !strings.Contains(r.Stderr, "spec.template.spec.nodeSelector: no App field for it") {
		t.Fatalf("no warning about nodeSelector: %s", r.Stderr)
	}
	eventually(t, 30*time.Second, "kubimp ready", appReady(t, d, "kubimp"))
	addr := ingressAddr(t, d)
	if code, body := get(t, addr, "kubimp.localhost", "/"); code != 200 || !strings.Contains(body, "version imported") {
		t.Fatalf("GET the imported App: %d %s", code, body)
	}

	aca := filepath.Join(dir, "aca.yaml")
	os.WriteFile(aca, []byte(`name: kubaca
type: Microsoft.App/containerApps
properties:
  configuration:
    ingress: {external: false, targetPort: 8080, allowInsecure: true}
  template:
    containers:
      - {name: web, image: hello, env: [{name: VERSION, value: aca}], resources: {cpu: 0.25, memory: 0.5Gi}}
    scale: {minReplicas: 1, maxReplicas: 2, rules: [{name: http, http: {metadata: {concurrentRequests: "10"}}}]}
    dapr: {enabled: true}
`), 0o644)
	out := must(t, d, "import", "aca", "-f", aca, "-o", "yaml")
	for _, want := range []string{"name: kubaca", "concurrency: 10", "cpu: 250m", "memory: 512Mi"} {
		if !strings.Contains(out, want) {
			t.Fatalf("aca import lacks %q:\n%s", want, out)
		}
	}
	defer d.Run("", "delete", "app", "kubaca")
	r = d.Run("", "import", "aca", "-f", aca)
	if r.Code != 0 || !strings.Contains(r.Stderr, "properties.template.dapr") {
		t.Fatalf("aca import: %s", r)
	}
	eventually(t, 30*time.Second, "kubaca ready", appReady(t, d, "kubaca"))
	if code, body := get(t, addr, "kubaca.localhost", "/"); code != 200 || !strings.Contains(body, "version aca") {
		t.Fatalf("GET the ACA App: %d %s", code, body)
	}
}
