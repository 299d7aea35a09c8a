//go:build kube

package kube

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The single node: its name, the CNI bridge of its pods and their
// addresses (a range skiff's and podman's networks do not use, reached
// only from this host), and the sandbox image containerd runs.
const (
	nodeName   = "skiff-node"
	podBridge  = "skiffkube0"
	podSubnet  = "10.244.77.0/24"
	podGateway = "10.244.77.1"
	pauseImage = "localhost/skiff-pause:1"
)

// kernelTunables are the sysctls a kubelet sets on its host (unless
// protectKernelDefaults, when it refuses to start if they differ), with
// the values it wants. The node's kubelet and containerd run in a mount
// namespace of their own where these files are plain files holding those
// values, so the host's are never touched.
var kernelTunables = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// Node is a kubelet and Debian's containerd, with the CNI bridge plugin,
// registered with the test cluster. There is no kube-scheduler: tests
// bind Pods to the node themselves.
type Node struct {
	Dir   string
	sock  string // containerd's socket
	procs *Cluster
}

// startNode starts a node in dir with the kubelet of bin, importing the
// images (docker-archive tars) into containerd's k8s.io namespace.
func startNode(dir, bin string, images ...string) (*Node, error) {
	n := &Node{Dir: dir, sock: filepath.Join(dir, "containerd.sock"), procs: &Cluster{Dir: dir}}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed: run make deps-kube", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return nil, fmt.Errorf("the CNI plugins are not installed: run make deps-kube (containernetworking-plugins)")
	}
	if err := n.writeFiles(); err != nil {
		return nil, err
	}
	if err := n.bridgeUp(); err != nil {
		return n, err
	}
	var mounts []string
	for f := range kernelTunables {
		mounts = append(mounts, fmt.Sprintf("mount --bind %s /proc/sys/%s", filepath.Join(dir, "sysctl", strings.ReplaceAll(f, "/", ".")), f))
	}
	script := "set -e; " + strings.Join(mounts, "; ") + "; exec containerd --config " + filepath.Join(dir, "containerd.toml")
	if err := n.procs.start("containerd", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script); err != nil {
		return n, err
	}
	if err := n.waitFor(30*time.Second, "containerd's socket", func() bool {
		return exec.Command("ctr", "--address", n.sock, "version").Run() == nil
	}); err != nil {
		return n, err
	}
	for _, img := range images {
		if out, err := exec.Command("ctr", "--address", n.sock, "-n", "k8s.io", "images", "import", img).CombinedOutput(); err != nil {
			return n, fmt.Errorf("ctr images import %s: %v\n%s", filepath.Base(img), err, out)
		}
	}
	pid := strconv.Itoa(n.procs.procs[0].Process.Pid)
	if err := n.procs.start("kubelet", "nsenter", "--target", pid, "--mount", "--",
		filepath.Join(bin, "kubelet"),
		"--config", filepath.Join(dir, "kubelet.yaml"),
		"--kubeconfig", env.cluster.Kubeconfig,
		"--hostname-override", nodeName, "--node-ip", podGateway,
		"--root-dir", filepath.Join(dir, "kubelet"), "--cert-dir", filepath.Join(dir, "kubelet", "pki"),
		"--v", "2"); err != nil {
		return n, err
	}
	return n, n.waitFor(120*time.Second, "node "+nodeName+" Ready", func() bool {
		nd, err := env.kube.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range nd.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
}

// writeFiles writes containerd's and the kubelet's configuration, the
// CNI network and the stand-ins of the kernel tunables.
func (n *Node) writeFiles() error {
	d := n.Dir
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, filepath.Join(d, "containerd", "root"), filepath.Join(d, "containerd", "state"), n.sock,
			filepath.Join(d, "containerd", "opt"), pauseImage, filepath.Join(d, "cni")),
		"cni/10-skiff.conflist": fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "skiff-kube", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "dataDir": %q}}]}
`, podBridge, podSubnet, podGateway, filepath.Join(d, "cni-ipam")),
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
failSwapOn: false
oomScoreAdj: 0
makeIPTablesUtilChains: false
localStorageCapacityIsolation: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 1Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
podLogsDir: %s
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
`, ports[0], n.sock, filepath.Join(d, "pod-logs")),
	}
	for f, v := range kernelTunables {
		files["sysctl/"+strings.ReplaceAll(f, "/", ".")] = v + "\n"
	}
	for f, data := range files {
		p := filepath.Join(d, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// bridgeUp makes the pods' bridge with the node's address on it, so that
// the node has an address of its own before its first pod.
func (n *Node) bridgeUp() error {
	exec.Command("ip", "link", "del", podBridge).Run() // a previous run's
	for _, args := range [][]string{
		{"link", "add", podBridge, "type", "bridge"},
		{"addr", "add", podGateway + "/24", "dev", podBridge},
		{"link", "set", podBridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func (n *Node) waitFor(limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := n.procs.exited(); err != nil {
			return fmt.Errorf("%w\n%s", err, n.Logs())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s\n%s", what, limit, n.Logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil
}

// Logs returns the end of containerd's and the kubelet's logs.
func (n *Node) Logs() string {
	var b strings.Builder
	for _, f := range []string{"containerd", "kubelet"} {
		data, err := os.ReadFile(filepath.Join(n.Dir, f+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- %s.log (end)\n%s\n", f, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	return b.String()
}

// Stop kills the node's containers, the kubelet and containerd, and
// removes the bridge, the node and what the runtime left on the host
// (the pods' cgroups, its shims). Its mounts (and the pods' network
// namespace files, under containerd's state) go with its mount namespace.
func (n *Node) Stop() {
	if len(n.procs.procs) > 0 {
		if out, err := exec.Command("ctr", "--address", n.sock, "-n", "k8s.io", "tasks", "ls", "-q").Output(); err == nil {
			for _, id := range strings.Fields(string(out)) {
				exec.Command("ctr", "--address", n.sock, "-n", "k8s.io", "tasks", "kill", "-s", "KILL", id).Run()
			}
		}
	}
	n.procs.Stop()
	killShims(n.sock)
	exec.Command("ip", "link", "del", podBridge).Run()
	env.kube.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{})
	removeCgroups("kubepods")
}

// killShims kills the containerd shims started for the containerd at
// sock (their command line names its address): they outlive containerd.
func killShims(sock string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) || !bytes.Contains(cmdline, []byte(sock)) {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// removeCgroups removes the cgroup name (and its children, deepest first)
// under every controller, as a kubelet with the cgroupfs driver makes it.
func removeCgroups(name string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// imageTar builds a static Go program of the repository (pkg) and writes
// a docker-archive of a FROM-scratch image named ref that runs it, as
// `skiff image save` writes one.
func imageTar(dir, pkg, ref string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = env.repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return "", err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: v1.Config{Entrypoint: []string{"/app"}}})
	if err != nil {
		return "", err
	}
	if img, err = mutate.AppendLayers(img, l); err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	out := bin + ".tar"
	return out, tarball.WriteToFile(out, tag, img)
}

// TestSingleNode: on a node of its own (a kubelet built like the control
// plane, Debian's containerd, the CNI bridge plugin), an exported App's
// Pod runs the App's image: apply --wait sees the rollout, the Pod
// answers on its address from the host, and the App's Service lists it
// as a ready endpoint. There is no kube-proxy, so the Service's ClusterIP
// is not reachable; the Pod's address is.
func TestSingleNode(t *testing.T) {
	dir, imgs := filepath.Join(env.tmp, "node"), t.TempDir()
	var images []string
	for _, im := range []struct{ pkg, ref string }{{"./test/kube/testdata/pause", pauseImage}, {"./examples/hello", "localhost/kubehello:1"}} {
		p, err := imageTar(imgs, im.pkg, im.ref)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, p)
	}
	node, err := startNode(dir, env.bin, images...)
	if node != nil {
		t.Cleanup(node.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, "node")
	f := writeApp(t, `apiVersion: skiff.dev/v1
kind: App
metadata: {name: kubehello}
spec:
  image: localhost/kubehello:1
  port: 8080
  env: [{name: VERSION, value: on-kubernetes}]
  scale: {min: 1, max: 1}
`)
	mustSkiff(t, "kube", "apply", "-f", f, "-n", ns)
	// No kube-scheduler: bind the Pod to the node, as it would.
	var pod corev1.Pod
	eventually(t, 60*time.Second, "the App's Pod", func() bool {
		l, err := env.kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "skiff.dev/app=kubehello"})
		if err != nil || len(l.Items) != 1 {
			return false
		}
		pod = l.Items[0]
		return true
	})
	err = env.kube.CoreV1().Pods(ns).Bind(context.Background(), &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := skiff("", "kube", "apply", "-f", f, "-n", ns, "--wait", "--timeout", "180s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "deployment.apps/kubehello-00001 rolled out") {
		p, _ := env.kube.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		t.Fatalf("--wait on a node: %s\npod status: %+v\n%s", r, p.Status, node.Logs())
	}
	p, err := env.kube.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Status.PodIP, "10.244.77.") {
		t.Fatalf("pod: phase %s, IP %q", p.Status.Phase, p.Status.PodIP)
	}
	// The export asks for a user namespace (hostUsers: false); a 1.32 API
	// server without the UserNamespacesSupport gate drops the field.
	t.Logf("pod %s on %s at %s, hostUsers %v", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Spec.HostUsers)
	out, err := exec.Command(filepath.Join(imgs, "hello"), "-get", "http://"+p.Status.PodIP+":8080/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from skiff") || !strings.Contains(string(out), "version on-kubernetes") {
		t.Fatalf("GET the Pod: %v: %s", err, out)
	}
	eventually(t, 60*time.Second, "the Service's ready endpoint "+p.Status.PodIP, func() bool {
		l, err := env.kube.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubehello"})
		if err != nil {
			return false
		}
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				if len(e.Addresses) == 1 && e.Addresses[0] == p.Status.PodIP && e.Conditions.Ready != nil && *e.Conditions.Ready {
					return true
				}
			}
		}
		return false
	})
}
