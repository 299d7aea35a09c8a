package unpack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

// FuzzApply checks Apply's invariant on any input: nothing is created or
// changed outside the layer directory (the sandbox around it, the lower
// layer, the host canary), every error is classified, a failed Apply
// leaves the directory empty, and a successful one holds no symlink that
// climbs out. It is seeded with the corpus in testdata.
func FuzzApply(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.tar"))
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) == 0 {
		f.Fatal("no corpus in testdata")
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	lowerTar, err := os.ReadFile(filepath.Join("testdata", "lower-base.tar"))
	if err != nil {
		f.Fatal(err)
	}

	// One lower layer serves every input of this process: Apply only
	// reads it, and each run checks that it is unchanged.
	requireRoot(f)
	lower := filepath.Join(f.TempDir(), "lower")
	if err := os.Mkdir(lower, 0o755); err != nil {
		f.Fatal(err)
	}
	if _, err := Apply(context.Background(), lower, bytes.NewReader(lowerTar), Options{}); err != nil {
		f.Fatal(err)
	}
	lowerBefore := treeLines(f, lower)

	// Directories are made an order of magnitude faster on tmpfs than on
	// this disk, so fuzzing runs there when it can.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandboxIn(t, base)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Odd-length inputs also exercise device nodes.
		opts := Options{Lowers: []string{lower}, AllowDevices: len(data)%2 == 1}
		st, err := Apply(ctx, s.root, bytes.NewReader(data), opts)

		s.checkUntouched(t)
		if d := diffLines(lowerBefore, treeLines(t, lower)); d != "" {
			t.Errorf("the lower layer changed:%s", d)
		}
		nodes := readTree(t, s.root)
		if err != nil {
			if errdefs.Category(err) == nil {
				t.Errorf("error %q has no errdefs category", err)
			}
			if len(nodes) > 0 || st != (Stats{}) {
				t.Errorf("after %q the layer directory holds %d nodes, stats %+v; want none", err, len(nodes), st)
			}
			if _, xerr := unix.Lgetxattr(s.root, opaqueXattr, make([]byte, 8)); xerr == nil {
				t.Errorf("after %q the layer directory keeps an opaque xattr", err)
			}
			return
		}
		for _, n := range nodes {
			kind := n.st.Mode & unix.S_IFMT
			if !opts.AllowDevices && (kind == unix.S_IFBLK || kind == unix.S_IFCHR && n.st.Rdev != 0) {
				t.Errorf("%s: a device node reached the disk without AllowDevices", n.rel)
			}
			if n.st.Mode&unix.S_IFMT == unix.S_IFLNK && symlinkClimbs(n.rel, n.target) {
				t.Errorf("symlink %s -> %s climbs out of the layer", n.rel, n.target)
			}
			for c := range strings.SplitSeq(n.rel, "/") {
				if strings.HasPrefix(c, whiteoutPrefix) {
					t.Errorf("%s: a whiteout name reached the disk", n.rel)
				}
			}
			for _, x := range n.xattrs {
				if overlayXattr(x.name) && !(x.name == opaqueXattr && x.value == "y" && n.st.Mode&unix.S_IFMT == unix.S_IFDIR) {
					t.Errorf("%s: unexpected overlay xattr %s=%q", n.rel, x.name, x.value)
				}
			}
		}
	})
}
