package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// testPrograms are the static programs under testdata/progs, each packed
// into an image of the same name.
var testPrograms = []string{"memhog", "spawn", "echoserver", "signals", "rawsock", "sysprobe"}

// buildImages builds the test images into d: hello (examples/hello),
// busybox (Debian's busybox-static with its applets and a passwd file),
// and one per test program.
func buildImages(d *Daemon) error {
	ctxs := filepath.Join(env.tmp, "contexts")
	type img struct{ name, src, pkg string }
	imgs := []img{{"hello", "examples/hello", "./examples/hello"}}
	for _, p := range testPrograms {
		imgs = append(imgs, img{p, "testdata/progs/" + p, "./testdata/progs/" + p})
	}
	for _, im := range imgs {
		dir := filepath.Join(ctxs, im.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		df, err := os.ReadFile(filepath.Join(env.repo, im.src, "Dockerfile"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644); err != nil {
			return err
		}
		if err := goBuild(filepath.Join(dir, im.name), im.pkg); err != nil {
			return err
		}
		if r := d.Run("", "image", "build", "-q", "-t", im.name, dir); r.Code != 0 {
			return fmt.Errorf("build image %s: %s", im.name, r)
		}
	}
	dir := filepath.Join(ctxs, "busybox")
	if err := busyboxContext(dir); err != nil {
		return err
	}
	if r := d.Run("", "image", "build", "-q", "-t", "busybox", dir); r.Code != 0 {
		return fmt.Errorf("build image busybox: %s", r)
	}
	return nil
}

// busyboxContext writes a build context for a small shell image.
func busyboxContext(dir string) error {
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "home/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n",
		"Dockerfile": "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD [\"sh\"]\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if name == "Dockerfile" {
			p = filepath.Join(dir, name)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.Chown(filepath.Join(root, "home/app"), 1000, 1000)
}
