//go:build kube

// Package kube tests skiff kube apply and diff against a real control
// plane: etcd, kube-apiserver and kube-controller-manager on loopback,
// built by scripts/kube-bins.sh, and against a node of its own (that
// script's kubelet over Debian's containerd). Run it with make test-kube.
package kube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/cli/kubeapply"
)

var env struct {
	repo    string
	tmp     string
	skiff   string // the skiff binary
	bin     string // the directory of the Kubernetes binaries
	cluster *Cluster
	kube    *kubernetes.Clientset
}

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube setup:", err)
		code = 1
	}
	if code == 0 {
		code = m.Run()
	}
	if env.cluster != nil {
		if code != 0 {
			fmt.Fprintln(os.Stderr, env.cluster.Logs())
		}
		env.cluster.Stop()
	}
	if env.tmp != "" && os.Getenv("SKIFF_KUBE_KEEP") == "" {
		os.RemoveAll(env.tmp)
	}
	os.Exit(code)
}

func setup() (int, error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return 1, fmt.Errorf("etcd is not installed: run make deps-kube (Debian's etcd-server)")
	}
	wd, _ := os.Getwd()
	env.repo = filepath.Clean(filepath.Join(wd, "../.."))
	bin := os.Getenv("SKIFF_KUBE_BIN")
	if bin == "" {
		out, err := exec.Command(filepath.Join(env.repo, "scripts/kube-bins.sh")).Output()
		if err != nil {
			return 1, fmt.Errorf("scripts/kube-bins.sh: %w", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	env.bin = bin
	tmp, err := os.MkdirTemp("", "skiff-kube-")
	if err != nil {
		return 1, err
	}
	env.tmp = tmp
	env.skiff = filepath.Join(tmp, "skiff")
	build := exec.Command("go", "build", "-o", env.skiff, "./cmd/skiff")
	build.Dir = env.repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "cluster")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 1, err
	}
	start := time.Now()
	env.cluster, err = startCluster(dir, bin)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(os.Stderr, "control plane ready in %s at %s\n", time.Since(start).Round(time.Millisecond), env.cluster.Server)
	rc, err := clientcmd.BuildConfigFromFlags("", env.cluster.Kubeconfig)
	if err != nil {
		return 1, err
	}
	env.kube, err = kubernetes.NewForConfig(rc)
	return 0, err
}

// namespace makes a namespace of its own for a test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := env.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager makes.
	eventually(t, 30*time.Second, "the default ServiceAccount of "+name, func() bool {
		_, err := env.kube.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	})
	return name
}

// cluster connects kubeapply to the test cluster, in namespace ns.
func cluster(t *testing.T, ns string) *kubeapply.Cluster {
	t.Helper()
	c, err := kubeapply.Connect(kubeapply.ConnectOptions{Kubeconfig: env.cluster.Kubeconfig, Namespace: ns}, func(w string) { t.Log("warning:", w) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// objects decodes YAML documents into objects.
func objects(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeObjects(strings.NewReader(docs))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decodeObjects(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// Result is a finished skiff command.
type Result struct {
	Code           int
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// skiff runs the skiff binary with the test cluster's kubeconfig in
// KUBECONFIG.
func skiff(stdin string, args ...string) Result {
	cmd := exec.Command(env.skiff, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.cluster.Kubeconfig, "SKIFF_SOCKET="+filepath.Join(env.tmp, "no-daemon.sock"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// eventually polls cond until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
