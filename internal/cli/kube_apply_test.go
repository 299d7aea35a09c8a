package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// discoveryServer answers the discovery requests of a cluster that
// serves only the core API (no Gateway API, no Knative), and counts the
// other requests it refuses.
func discoveryServer(t *testing.T) (*httptest.Server, *int) {
	others := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/version":
			fmt.Fprint(w, `{"major":"1","minor":"32","gitVersion":"v1.32.13"}`)
		case "/api":
			fmt.Fprint(w, `{"kind":"APIVersions","versions":["v1"]}`)
		case "/apis":
			fmt.Fprint(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[]}`)
		case "/api/v1":
			fmt.Fprint(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"services","namespaced":true,"kind":"Service","verbs":["get","patch"]}]}`)
		default:
			others++
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"reason":"NotFound"}`, 404)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &others
}

func writeKubeTestFiles(t *testing.T, server string) (kubeconfig, app string) {
	dir := t.TempDir()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: web}}]
current-context: c
`, server)
	app = filepath.Join(dir, "app.yaml")
	doc := "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: hello}\nspec: {image: localhost/hello:1}\n"
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(app, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, app
}

// TestKubeApplyKnativeNeedsKnativeServing: the knative flavor on a
// cluster without serving.knative.dev is refused before anything is
// sent but discovery, naming the CRDs to install.
func TestKubeApplyKnativeNeedsKnativeServing(t *testing.T) {
	srv, others := discoveryServer(t)
	kc, app := writeKubeTestFiles(t, srv.URL)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"kube", "apply", "-f", app, "--kubeconfig", kc, "--flavor", "knative"}, strings.NewReader(""), &out, &errb)
	if code != 125 || !strings.Contains(errb.String(), "does not serve Knative Services (serving.knative.dev/v1)") || !strings.Contains(errb.String(), "serving-crds.yaml") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if *others != 0 || out.Len() != 0 {
		t.Errorf("%d requests beyond discovery; stdout %q", *others, out.String())
	}
	code = run(context.Background(), []string{"kube", "diff", "-f", app, "--kubeconfig", kc, "--flavor", "knative"}, strings.NewReader(""), &out, &errb)
	if code != 2 {
		t.Errorf("diff of a refused flavor exits %d, want 2", code)
	}
}

// TestKubeApplyUnreachableCluster: a cluster that cannot be reached is
// named as such, with nothing exported or printed first.
func TestKubeApplyUnreachableCluster(t *testing.T) {
	srv, _ := discoveryServer(t)
	url := srv.URL
	srv.Close()
	kc, app := writeKubeTestFiles(t, url)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"kube", "apply", "-f", app, "--kubeconfig", kc}, strings.NewReader(""), &out, &errb)
	if code != 125 || !strings.Contains(errb.String(), "cannot reach the cluster") || strings.Contains(errb.String(), "warning:") {
		t.Fatalf("exit %d\nstderr: %s", code, errb.String())
	}
	code = run(context.Background(), []string{"kube", "apply", "-f", app, "--kubeconfig", kc, "--dry-run=client"}, strings.NewReader(""), &out, &errb)
	if code != 125 || !strings.Contains(errb.String(), "--dry-run=client: use server") {
		t.Errorf("--dry-run=client: exit %d\n%s", code, errb.String())
	}
}

// TestKubeApplyWithoutGatewayAPIFallsBackToIngress: an external App's
// route becomes an Ingress, with a warning, when discovery finds no
// Gateway API; what the cluster then lacks is named.
func TestKubeApplyWithoutGatewayAPIFallsBackToIngress(t *testing.T) {
	srv, _ := discoveryServer(t)
	kc, app := writeKubeTestFiles(t, srv.URL)
	doc := "apiVersion: skiff.dev/v1\nkind: App\nmetadata: {name: hello}\nspec: {image: localhost/hello:1, ingress: {host: hello.example.com, external: true}}\n"
	if err := os.WriteFile(app, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"kube", "apply", "-f", app, "--kubeconfig", kc, "--dry-run=server"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "warning: the cluster does not serve the Gateway API") || !strings.Contains(errb.String(), "does not serve networking.k8s.io/v1 NetworkPolicy") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
}
