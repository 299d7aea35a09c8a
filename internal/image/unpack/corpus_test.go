package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/api/errdefs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.tar from the corpus definitions")

// canaryDir is a fixed host directory the corpus aims at with absolute
// names, symlinks and hardlinks. The tests keep one file in it and check
// after every Apply that nothing else appeared and that the file was
// neither changed nor linked.
const (
	canaryDir    = "/tmp/skiff-unpack-canary"
	canarySecret = "the host's secret\n"
)

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// ent is one entry of a tar the tests build.
type ent struct {
	hdr  tar.Header
	body string
	// short cuts the body: the tar claims hdr.Size bytes but carries fewer.
	short bool
}

func reg(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func sym(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hard(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

func dev(name string, flag byte, major, minor int64) ent {
	return ent{hdr: tar.Header{Typeflag: flag, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: epoch}}
}

// with changes the entry's header.
func with(e ent, f func(h *tar.Header)) ent {
	f(&e.hdr)
	return e
}

func owner(uid, gid int) func(*tar.Header) {
	return func(h *tar.Header) { h.Uid, h.Gid = uid, gid }
}

func mode(m int64) func(*tar.Header) { return func(h *tar.Header) { h.Mode = m } }

func xattrs(kv ...string) func(*tar.Header) {
	return func(h *tar.Header) {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			h.PAXRecords[paxXattrPrefix+kv[i]] = kv[i+1]
		}
	}
}

func mtime(t time.Time) func(*tar.Header) { return func(h *tar.Header) { h.ModTime = t } }

// tarOf writes the entries as a tar stream.
func tarOf(es ...ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("corpus entry %q: %v", h.Name, err))
		}
		if e.short {
			tw.Write([]byte(e.body))
			return buf.Bytes() // the stream ends inside the body
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			panic(fmt.Sprintf("corpus entry %q: %v", h.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// paxPrefix returns a PAX extended header carrying records, to put
// before a tar whose first entry they apply to. archive/tar's writer
// drops records it manages itself (GNU.sparse.*), so the block is made by
// hand: a regular header, retyped to 'x', with its checksum redone.
func paxPrefix(records ...string) []byte {
	var body strings.Builder
	for i := 0; i+1 < len(records); i += 2 {
		rec := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(rec)
		for len(fmt.Sprint(n))+len(rec) != n {
			n = len(fmt.Sprint(n)) + len(rec)
		}
		fmt.Fprintf(&body, "%d%s", n, rec)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/x", Size: int64(body.Len()), Mode: 0o644, ModTime: epoch, Format: tar.FormatUSTAR})
	tw.Write([]byte(body.String()))
	tw.Flush()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective)
// granting CAP_NET_RAW, as `setcap cap_net_raw+ep` writes it.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

// deepPath is 60 directories of 80 characters: about 4.9 kB, longer than
// PATH_MAX.
func deepPath() string {
	var parts []string
	for i := range 60 {
		parts = append(parts, fmt.Sprintf("%02d%s", i, strings.Repeat("d", 78)))
	}
	return strings.Join(parts, "/")
}

// corpusCase is one tar of the corpus and what Apply must make of it.
type corpusCase struct {
	name string
	// file is the tar in testdata, without ".tar"; name when empty.
	file string
	data func() []byte
	// lowers names ok cases unpacked as the lower layers, top first.
	lowers       []string
	allowDevices bool
	// wantEntry is the refused entry's name; "" when Apply must succeed.
	wantEntry string
	// wantReason is a part of the refusal's reason.
	wantReason string
	// wantInvalid marks a stream refused as a whole (ErrInvalid, no entry).
	wantInvalid bool
	// want is the unpacked tree (see treeNode.line).
	want []string
	// static marks a tar kept in testdata as it is, made by another tool
	// (see testdata/README.md).
	static bool
	// check runs extra checks on the unpacked root.
	check func(t *testing.T, root string)
	// wantSkipped and wantFirstSkipped are the device entries Apply must
	// report as skipped.
	wantSkipped      int
	wantFirstSkipped string
	// wantRoot is the root entry Apply must report.
	wantRoot *RootEntry
}

func (c corpusCase) tarFile() string {
	if c.file != "" {
		return c.file
	}
	return c.name
}

func corpus() []corpusCase {
	deep := deepPath()
	var deepWant []string
	for p := deep; p != "."; p = filepath.Dir(p) {
		deepWant = append(deepWant, p+"/ dir 0755 0:0")
	}
	deepWant = append(deepWant, deep+`/bottom file 0644 0:0 "deep"`)
	long := strings.Repeat("n", 255)
	longDir := strings.Repeat("l", 200)

	return []corpusCase{
		{name: "empty", data: func() []byte { return tarOf() }},
		{name: "zero-length", data: func() []byte { return nil }},
		{name: "not-tar", wantInvalid: true, data: func() []byte {
			return []byte(strings.Repeat("this is not a tar archive\n", 40))
		}},
		{name: "short-garbage", wantInvalid: true, data: func() []byte { return []byte("hello\n") }},
		{name: "gzip", wantInvalid: true, wantReason: "gzip-compressed", data: func() []byte {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(tarOf(reg("a", "a")))
			zw.Close()
			return buf.Bytes()
		}},
		{name: "truncated-body", wantEntry: "big", wantReason: "ends or breaks inside its content", data: func() []byte {
			e := reg("big", strings.Repeat("x", 100))
			e.hdr.Size, e.short = 1000, true
			return tarOf(reg("first", "ok"), e)
		}},
		{name: "truncated-header", wantInvalid: true, wantReason: `after entry "a"`, data: func() []byte {
			return tarOf(reg("a", "hello"), reg("b", "world"))[:512+512+200]
		}},
		{name: "dotdot", wantEntry: "../outside/evil", wantReason: "climbs out", data: func() []byte {
			return tarOf(reg("../outside/evil", "x"))
		}},
		{name: "dotdot-nested", wantEntry: "a/../../outside/evil", data: func() []byte {
			return tarOf(dir("a/"), reg("a/ok", "ok"), reg("a/../../outside/evil", "x"))
		}},
		{name: "dotdot-absolute", wantEntry: "/../outside/evil", data: func() []byte {
			return tarOf(reg("/../outside/evil", "x"))
		}},
		{name: "dotdot-inside", data: func() []byte {
			return tarOf(dir("a/"), reg("a/../b", "b"), reg("./c/../d", "d"))
		}, want: []string{
			"a/ dir 0755 0:0", `b file 0644 0:0 "b"`, `d file 0644 0:0 "d"`,
		}},
		{name: "absolute", data: func() []byte {
			return tarOf(dir("/etc/"), reg("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
				sym("/bin/sh", "/bin/busybox"), dir("//usr///bin/"), reg(canaryDir+"/secret", "not the host's"))
		}, want: []string{
			"bin/ dir 0755 0:0", "bin/sh -> /bin/busybox 0:0",
			"etc/ dir 0755 0:0", `etc/passwd file 0644 0:0 "root:x:0:0::/root:/bin/sh\n"`,
			"tmp/ dir 0755 0:0", "tmp/skiff-unpack-canary/ dir 0755 0:0",
			`tmp/skiff-unpack-canary/secret file 0644 0:0 "not the host's"`,
			"usr/ dir 0755 0:0", "usr/bin/ dir 0755 0:0",
		}},
		{name: "symlink-write-through-absolute", wantEntry: "escape/evil", wantReason: `goes through the symlink "escape"`, data: func() []byte {
			return tarOf(sym("escape", canaryDir), reg("escape/evil", "x"))
		}},
		{name: "symlink-write-through-relative", wantEntry: "link/evil", data: func() []byte {
			return tarOf(dir("sub/"), sym("link", "sub"), reg("link/evil", "x"))
		}},
		{name: "symlink-write-through-dir", wantEntry: "escape/newdir/", data: func() []byte {
			return tarOf(sym("escape", canaryDir), dir("escape/newdir/"))
		}},
		{name: "symlink-write-through-deep", wantEntry: "a/b/c/evil", wantReason: `symlink "a/b"`, data: func() []byte {
			return tarOf(dir("a/"), sym("a/b", "../outside-not-climbing"), reg("a/b/c/evil", "x"))
		}},
		{name: "symlink-write-through-whiteout", wantEntry: "escape/.wh.secret", data: func() []byte {
			return tarOf(sym("escape", canaryDir), reg("escape/.wh.secret", ""))
		}},
		{name: "symlink-write-through-opaque", wantEntry: "escape/.wh..wh..opq", data: func() []byte {
			return tarOf(sym("escape", canaryDir), reg("escape/.wh..wh..opq", ""))
		}},
		{name: "symlink-climb", wantEntry: "up", wantReason: "climbs out", data: func() []byte {
			return tarOf(sym("up", "../outside"))
		}},
		{name: "symlink-climb-nested", wantEntry: "a/b/up", data: func() []byte {
			return tarOf(sym("a/b/up", "../../../outside/secret"))
		}},
		{name: "symlink-climb-absolute", wantEntry: "x", data: func() []byte {
			return tarOf(sym("x", "/../../etc/passwd"))
		}},
		{name: "symlink-climb-midway", wantEntry: "a/x", data: func() []byte {
			return tarOf(sym("a/x", "../../a/b"))
		}},
		{name: "symlinks", data: func() []byte {
			return tarOf(sym("bin/sh", "/bin/busybox"), sym("a/b/rel", "../../c"), sym("dot", "."),
				sym("host", canaryDir+"/secret"), sym("dangling", "nowhere/at/all"), sym("a/inside", "b/../../a"))
		}, want: []string{
			"a/ dir 0755 0:0", "a/b/ dir 0755 0:0", "a/b/rel -> ../../c 0:0", "a/inside -> b/../../a 0:0",
			"bin/ dir 0755 0:0", "bin/sh -> /bin/busybox 0:0", "dangling -> nowhere/at/all 0:0",
			"dot -> . 0:0", "host -> " + canaryDir + "/secret 0:0",
		}},
		{name: "symlink-replaced", data: func() []byte {
			return tarOf(sym("escape", canaryDir+"/secret"), reg("escape", "data"),
				sym("d", canaryDir), dir("d/"), reg("d/f", "inside"),
				sym("l", "a"), sym("l", "b"))
		}, want: []string{
			"d/ dir 0755 0:0", `d/f file 0644 0:0 "inside"`, `escape file 0644 0:0 "data"`, "l -> b 0:0",
		}},
		{name: "hardlink-escape", wantEntry: "evil", wantReason: "climbs out", data: func() []byte {
			return tarOf(hard("evil", "../outside/secret"))
		}},
		{name: "hardlink-host", wantEntry: "evil", wantReason: "does not exist", data: func() []byte {
			return tarOf(hard("evil", canaryDir+"/secret"))
		}},
		{name: "hardlink-through-symlink", wantEntry: "evil", wantReason: "symlink", data: func() []byte {
			return tarOf(sym("escape", canaryDir), hard("evil", "escape/secret"))
		}},
		{name: "hardlink-missing", wantEntry: "evil", data: func() []byte {
			return tarOf(reg("present", "x"), hard("evil", "absent"))
		}},
		{name: "hardlink-dir", wantEntry: "evil", wantReason: "is a directory", data: func() []byte {
			return tarOf(dir("d/"), hard("evil", "d"))
		}},
		{name: "hardlink-self", wantEntry: "f", data: func() []byte {
			return tarOf(reg("f", "x"), hard("f", "f"))
		}},
		{name: "hardlink-over-its-dir", wantEntry: "d", data: func() []byte {
			return tarOf(dir("d/"), reg("d/f", "x"), hard("d", "d/f"))
		}},
		{name: "hardlink-root", wantEntry: "evil", data: func() []byte {
			return tarOf(hard("evil", "/"))
		}},
		{name: "hardlinks", data: func() []byte {
			return tarOf(reg("f", "x"), hard("g", "f"), hard("sub/h", "/f"), sym("s", "f"), hard("hs", "s"),
				reg("o", "old"), hard("o", "f"), hard("g", "f"))
		}, want: []string{
			`f file 0644 0:0 "x" links=4`, `g file 0644 0:0 "x" links=4`, `o file 0644 0:0 "x" links=4`,
			"s -> f 0:0 links=2", "hs -> f 0:0 links=2", "sub/ dir 0755 0:0", `sub/h file 0644 0:0 "x" links=4`,
		}},
		{name: "lower-base", data: func() []byte {
			return tarOf(dir("bin/"), with(reg("bin/busybox", "#!busybox"), func(h *tar.Header) {
				h.Mode = 0o4755
				h.Uid, h.Gid = 0, 10
				h.PAXRecords = map[string]string{paxXattrPrefix + "user.origin": "lower"}
			}), sym("bin/sh", "busybox"), sym("bin/up", "../etc/passwd"), dir("etc/"), reg("etc/passwd", "root"),
				dir("gone/"), reg("gone/file", "g"), dir("opq/"), reg("opq/file", "o"), dev("fifo", tar.TypeFifo, 0, 0))
		}, want: []string{
			"bin/ dir 0755 0:0", `bin/busybox file 4755 0:10 "#!busybox" user.origin="lower"`, "bin/sh -> busybox 0:0",
			"bin/up -> ../etc/passwd 0:0",
			"etc/ dir 0755 0:0", `etc/passwd file 0644 0:0 "root"`, "fifo fifo 0666 0:0",
			"gone/ dir 0755 0:0", `gone/file file 0644 0:0 "g"`, "opq/ dir 0755 0:0", `opq/file file 0644 0:0 "o"`,
		}},
		{name: "hardlink-lower", lowers: []string{"lower-base"}, data: func() []byte {
			return tarOf(hard("bin/ls", "bin/busybox"), hard("bin/cat", "/bin/busybox"), hard("sh2", "bin/sh"),
				hard("pipe", "fifo"))
		}, want: []string{
			"bin/ dir 0755 0:0",
			`bin/cat file 4755 0:10 "#!busybox" links=2 user.origin="lower"`,
			`bin/ls file 4755 0:10 "#!busybox" links=2 user.origin="lower"`,
			"pipe fifo 0666 0:0", "sh2 -> busybox 0:0",
		}},
		{name: "hardlink-lower-climbing-symlink", lowers: []string{"lower-base"}, wantEntry: "up", wantReason: "climbs out", data: func() []byte {
			return tarOf(sym("ok", "x"), hard("up", "bin/up"))
		}},
		{name: "hardlink-lower-whiteout", lowers: []string{"lower-base"}, wantEntry: "p", wantReason: "whiteout", data: func() []byte {
			return tarOf(reg("etc/.wh.passwd", ""), hard("p", "etc/passwd"))
		}},
		{name: "hardlink-lower-opaque", lowers: []string{"lower-base"}, wantEntry: "x", wantReason: "does not exist", data: func() []byte {
			return tarOf(reg("opq/.wh..wh..opq", ""), hard("x", "opq/file"))
		}},
		{name: "hardlink-lower-dir-whiteout", lowers: []string{"lower-base"}, wantEntry: "x", data: func() []byte {
			return tarOf(reg(".wh.gone", ""), hard("x", "gone/file"))
		}},
		{name: "hardlink-lower-shadowed", lowers: []string{"lower-base"}, data: func() []byte {
			return tarOf(reg("etc/passwd", "upper"), hard("p", "etc/passwd"))
		}, want: []string{
			"etc/ dir 0755 0:0", `etc/passwd file 0644 0:0 "upper" links=2`, `p file 0644 0:0 "upper" links=2`,
		}},
		// Devices are skipped unless allowed: root filesystem tarballs
		// (mmdebstrap, debootstrap) hold dev/console, dev/null and more.
		{name: "device-char", wantSkipped: 1, wantFirstSkipped: "dev/null", data: func() []byte {
			return tarOf(dir("dev/"), dev("dev/null", tar.TypeChar, 1, 3))
		}, want: []string{"dev/ dir 0755 0:0"}},
		{name: "device-char-allowed", file: "device-char", allowDevices: true, want: []string{
			"dev/ dir 0755 0:0", "dev/null char 0666 0:0 1/3",
		}},
		{name: "device-block", wantSkipped: 1, wantFirstSkipped: "dev/sda", data: func() []byte {
			return tarOf(dev("dev/sda", tar.TypeBlock, 8, 0))
		}},
		{name: "device-block-allowed", file: "device-block", allowDevices: true, want: []string{
			"dev/ dir 0755 0:0", "dev/sda block 0666 0:0 8/0",
		}},
		{name: "device-hardlinks", wantSkipped: 3, wantFirstSkipped: "dev/console", data: func() []byte {
			return tarOf(dir("dev/"), dev("dev/console", tar.TypeChar, 5, 1), dev("dev/null", tar.TypeChar, 1, 3),
				hard("dev/null2", "/dev/null"), reg("dev/x", "x"), hard("dev/x2", "dev/x"))
		}, want: []string{"dev/ dir 0755 0:0", `dev/x file 0644 0:0 "x" links=2`, `dev/x2 file 0644 0:0 "x" links=2`}},
		{name: "device-replaced", wantSkipped: 1, wantFirstSkipped: "x", data: func() []byte {
			return tarOf(dev("x", tar.TypeChar, 1, 3), reg("x", "file"), hard("y", "x"))
		}, want: []string{`x file 0644 0:0 "file" links=2`, `y file 0644 0:0 "file" links=2`}},
		{name: "lower-devices", allowDevices: true, data: func() []byte {
			return tarOf(dir("dev/"), dev("dev/null", tar.TypeChar, 1, 3))
		}, want: []string{"dev/ dir 0755 0:0", "dev/null char 0666 0:0 1/3"}},
		{name: "device-hardlink-lower", lowers: []string{"lower-devices"}, wantSkipped: 1, wantFirstSkipped: "null", data: func() []byte {
			return tarOf(hard("null", "dev/null"), reg("a", "a"))
		}, want: []string{`a file 0644 0:0 "a"`}},
		{name: "device-hardlink-lower-allowed", file: "device-hardlink-lower", lowers: []string{"lower-devices"}, allowDevices: true,
			want: []string{`a file 0644 0:0 "a"`, "null char 0666 0:0 1/3"}},
		{name: "device-whiteout-lookalike", allowDevices: true, wantEntry: "fake", wantReason: "whiteout", data: func() []byte {
			return tarOf(dev("fake", tar.TypeChar, 0, 0))
		}},
		{name: "device-whiteout-lookalike-skipping", file: "device-whiteout-lookalike", wantEntry: "fake", wantReason: "whiteout"},
		{name: "device-out-of-range", wantEntry: "dev/big", wantReason: "out of range", data: func() []byte {
			return tarOf(dev("dev/big", tar.TypeBlock, 1<<33, 0))
		}},
		{name: "fifo", data: func() []byte {
			return tarOf(with(dev("run/fifo", tar.TypeFifo, 0, 0), mode(0o600)))
		}, want: []string{"run/ dir 0755 0:0", "run/fifo fifo 0600 0:0"}},
		{name: "duplicates", data: func() []byte {
			return tarOf(reg("f", "one"), reg("f", "two"),
				with(dir("d/"), mode(0o700)), with(dir("d/"), func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o750, 5, 6 }),
				dir("x/"), reg("x/child", "c"), reg("x", "file"),
				reg("y", "file"), dir("y/"),
				with(reg("z", "z"), xattrs("user.a", "1")), with(reg("z", "z2"), xattrs("user.b", "2")))
		}, want: []string{
			"d/ dir 0750 5:6", `f file 0644 0:0 "two"`, `x file 0644 0:0 "file"`, "y/ dir 0755 0:0",
			`z file 0644 0:0 "z2" user.b="2"`,
		}},
		{name: "sparse-pax", static: true, want: []string{"big file 0644 0:0 " + sparseDigest()}, check: checkSparse},
		{name: "sparse-gnu", static: true, want: []string{"big file 0644 0:0 " + sparseDigest()}, check: checkSparse},
		{name: "sparse-bomb", wantEntry: "bomb", wantReason: "sparse files expand to more than 16 GiB", data: func() []byte {
			return append(paxPrefix("GNU.sparse.major", "0", "GNU.sparse.minor", "1", "GNU.sparse.size", "18253611008",
				"GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,0"), tarOf(reg("bomb", ""))...)
		}},
		{name: "sparse-holes", data: func() []byte {
			return append(paxPrefix("GNU.sparse.major", "0", "GNU.sparse.minor", "1", "GNU.sparse.size", "67108864",
				"GNU.sparse.numblocks", "2", "GNU.sparse.map", "0,5,67108859,5"), tarOf(reg("holes", "startended"))...)
		}, want: []string{"holes file 0644 0:0 " + holesDigest()}, check: func(t *testing.T, root string) {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(root, "holes"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != 64<<20 || st.Blocks*512 > 1<<20 {
				t.Errorf("holes: size %d using %d bytes, want 64 MiB using less than 1 MiB", st.Size, st.Blocks*512)
			}
		}},
		{name: "file-as-parent", wantEntry: "f/x", wantReason: "not a directory", data: func() []byte {
			return tarOf(reg("f", "x"), reg("f/x", "y"))
		}},
		{name: "deep", data: func() []byte {
			return tarOf(reg(deep+"/bottom", "deep"))
		}, want: deepWant},
		{name: "long-names", data: func() []byte {
			return tarOf(dir(longDir+"/"), reg(longDir+"/"+long, "long"), sym(longDir+"/s", long))
		}, want: []string{
			longDir + "/ dir 0755 0:0", longDir + "/" + long + ` file 0644 0:0 "long"`, longDir + "/s -> " + long + " 0:0",
		}},
		{name: "name-too-long", wantEntry: strings.Repeat("x", 256), wantReason: "longer than the file system allows", data: func() []byte {
			return tarOf(reg(strings.Repeat("x", 256), "x"))
		}},
		{name: "whiteouts", data: func() []byte {
			return tarOf(reg(".wh.gone", ""), reg("d/.wh.x", ""), dir("o/"), reg("o/.wh..wh..opq", ""), reg("o/keep", "k"),
				reg("new/.wh..wh..opq", ""), reg(".wh..wh.aufs", ""), dir(".wh..wh.plnk/"), reg(".wh..wh.plnk/1.2", ""))
		}, want: []string{
			"d/ dir 0755 0:0", "d/x char 0000 0:0 0/0", "gone char 0000 0:0 0/0",
			`new/ dir 0755 0:0 trusted.overlay.opaque="y"`,
			`o/ dir 0755 0:0 trusted.overlay.opaque="y"`, `o/keep file 0644 0:0 "k"`,
		}},
		{name: "whiteout-recreate", data: func() []byte {
			return tarOf(reg(".wh.a", ""), dir("a/"), reg("a/f", "f"), reg(".wh.e", ""), reg("e/x", "x"),
				reg(".wh.g", ""), reg("g", "file again"))
		}, want: []string{
			`a/ dir 0755 0:0 trusted.overlay.opaque="y"`, `a/f file 0644 0:0 "f"`,
			`e/ dir 0755 0:0 trusted.overlay.opaque="y"`, `e/x file 0644 0:0 "x"`,
			`g file 0644 0:0 "file again"`,
		}},
		{name: "whiteout-same-layer", data: func() []byte {
			return tarOf(reg("f", "kept"), reg(".wh.f", ""), dir("d/"), reg(".wh.d", ""))
		}, want: []string{"d/ dir 0755 0:0", `f file 0644 0:0 "kept"`}},
		{name: "whiteout-root-opaque", wantEntry: ".wh..wh..opq", wantReason: "overlayfs ignores", data: func() []byte {
			return tarOf(reg("a", "a"), reg(".wh..wh..opq", ""))
		}},
		{name: "whiteout-empty-name", wantEntry: "a/.wh.", data: func() []byte {
			return tarOf(reg("a/.wh.", ""))
		}},
		{name: "whiteout-dot", wantEntry: "a/.wh..", data: func() []byte {
			return tarOf(reg("a/.wh..", ""))
		}},
		{name: "whiteout-parent", wantEntry: ".wh.a/b", wantReason: "reserved whiteout prefix", data: func() []byte {
			return tarOf(reg(".wh.a/b", ""))
		}},
		{name: "opaque-parent", wantEntry: "a/.wh..wh..opq/b", data: func() []byte {
			return tarOf(reg("a/.wh..wh..opq/b", ""))
		}},
		{name: "setuid-xattrs", data: func() []byte {
			return tarOf(
				with(reg("usr/bin/su", "su"), mode(0o4755)),
				with(reg("usr/bin/wall", "wall"), func(h *tar.Header) { h.Mode, h.Gid = 0o2755, 5 }),
				with(reg("usr/bin/ping", "ping"), xattrs("security.capability", capNetRaw())),
				with(reg("usr/bin/sping", "sping"), func(h *tar.Header) {
					h.Mode, h.Uid = 0o4750, 1000
					xattrs("security.capability", capNetRaw())(h)
				}),
				with(dir("tmp/"), mode(0o1777)),
				with(dir("srv/"), func(h *tar.Header) { h.Mode, h.Gid = 0o2775, 50 }),
				with(dir("home/u/"), func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o700, 1000, 1000 }),
				with(reg("home/u/f", "mine"), func(h *tar.Header) {
					h.Mode, h.Uid, h.Gid = 0o600, 1000, 1000
					xattrs("user.note", "hi", "trusted.mark", "t")(h)
				}),
				with(reg("srv/f", "in setgid dir"), owner(7, 7)),
				with(sym("home/u/link", "f"), owner(1000, 1000)),
				with(dir("empty/"), mode(0)),
			)
		}, want: []string{
			"empty/ dir 0000 0:0",
			"home/ dir 0755 0:0", "home/u/ dir 0700 1000:1000",
			`home/u/f file 0600 1000:1000 "mine" trusted.mark="t" user.note="hi"`,
			"home/u/link -> f 1000:1000",
			"srv/ dir 2775 0:50", `srv/f file 0644 7:7 "in setgid dir"`,
			"tmp/ dir 1777 0:0",
			"usr/ dir 0755 0:0", "usr/bin/ dir 0755 0:0",
			`usr/bin/ping file 0644 0:0 "ping" security.capability=` + fmt.Sprintf("%q", capNetRaw()),
			`usr/bin/sping file 4750 1000:0 "sping" security.capability=` + fmt.Sprintf("%q", capNetRaw()),
			`usr/bin/su file 4755 0:0 "su"`,
			`usr/bin/wall file 2755 0:5 "wall"`,
		}},
		{name: "overlay-xattr", wantEntry: "d/", wantReason: "reserved for overlayfs", data: func() []byte {
			return tarOf(with(dir("d/"), xattrs("trusted.overlay.opaque", "y")))
		}},
		{name: "overlay-user-xattr", wantEntry: "f", data: func() []byte {
			return tarOf(with(reg("f", "x"), xattrs("user.overlay.redirect", "/etc")))
		}},
		{name: "symlink-user-xattr", wantEntry: "s", wantReason: "user.* xattrs only on regular files", data: func() []byte {
			return tarOf(with(sym("s", "t"), xattrs("user.note", "x")))
		}},
		{name: "symlink-trusted-xattr", data: func() []byte {
			return tarOf(with(sym("s", "t"), xattrs("trusted.note", "x")))
		}, want: []string{`s -> t 0:0 trusted.note="x"`}},
		{name: "owner-out-of-range", wantEntry: "f", wantReason: "out of range", data: func() []byte {
			return tarOf(with(reg("f", "x"), owner(1<<32, 0)))
		}},
		{name: "unknown-type", wantEntry: "weird", wantReason: "not supported", data: func() []byte {
			return tarOf(ent{hdr: tar.Header{Typeflag: 'Z', Name: "weird", Mode: 0o644, ModTime: epoch}})
		}},
		{name: "contiguous-type", wantEntry: "cont", data: func() []byte {
			return tarOf(ent{hdr: tar.Header{Typeflag: tar.TypeCont, Name: "cont", Mode: 0o644, ModTime: epoch}})
		}},
		// The root's metadata is reported, never given to the directory.
		{name: "root-entries", wantRoot: &RootEntry{Mode: 0o700, ModTime: epoch, AccessTime: epoch}, data: func() []byte {
			return tarOf(dir("./"), dir("/"), dir("."), with(dir("./"), mode(0o700)), reg("./a", "a"))
		}, want: []string{`a file 0644 0:0 "a"`}},
		{name: "root-metadata", wantRoot: &RootEntry{UID: 5, GID: 6, Mode: 0o1750, ModTime: epoch, AccessTime: epoch.Add(time.Hour)}, data: func() []byte {
			return tarOf(with(dir("./"), func(h *tar.Header) {
				h.Uid, h.Gid, h.Mode, h.AccessTime, h.Format = 5, 6, 0o1750, epoch.Add(time.Hour), tar.FormatPAX
			}))
		}},
		{name: "root-owner-out-of-range", wantEntry: "./", wantReason: "out of range", data: func() []byte {
			return tarOf(with(dir("./"), owner(1<<32, 0)))
		}},
		{name: "root-file", wantEntry: "./", wantReason: "layer root", data: func() []byte {
			return tarOf(ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "./", Linkname: "/", ModTime: epoch}})
		}},
		{name: "global-header", data: func() []byte {
			return tarOf(ent{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
				PAXRecords: map[string]string{"comment": "git archive"}}}, reg("a", "a"))
		}, want: []string{`a file 0644 0:0 "a"`}},
		{name: "mtimes", data: func() []byte {
			return tarOf(
				with(dir("d/"), mtime(time.Date(2002, 2, 2, 2, 2, 2, 0, time.UTC))),
				with(reg("d/f", "f"), func(h *tar.Header) {
					h.ModTime = time.Date(2001, 1, 1, 1, 1, 1, 500, time.UTC)
					h.Format = tar.FormatPAX
				}),
				with(sym("d/s", "f"), mtime(time.Date(2003, 3, 3, 3, 3, 3, 0, time.UTC))),
				with(dev("d/p", tar.TypeFifo, 0, 0), mtime(time.Date(2004, 4, 4, 4, 4, 4, 0, time.UTC))),
				with(reg("d/later", "l"), func(h *tar.Header) {
					h.ModTime = time.Date(2005, 5, 5, 5, 5, 5, 0, time.UTC)
					h.AccessTime = time.Date(2006, 6, 6, 6, 6, 6, 0, time.UTC)
					h.Format = tar.FormatPAX
				}))
		}, check: func(t *testing.T, root string) {
			for _, c := range []struct {
				rel   string
				mtime time.Time
				atime time.Time
			}{
				{rel: "d", mtime: time.Date(2002, 2, 2, 2, 2, 2, 0, time.UTC)},
				{rel: "d/f", mtime: time.Date(2001, 1, 1, 1, 1, 1, 500, time.UTC)},
				{rel: "d/s", mtime: time.Date(2003, 3, 3, 3, 3, 3, 0, time.UTC)},
				{rel: "d/p", mtime: time.Date(2004, 4, 4, 4, 4, 4, 0, time.UTC)},
				{rel: "d/later", mtime: time.Date(2005, 5, 5, 5, 5, 5, 0, time.UTC), atime: time.Date(2006, 6, 6, 6, 6, 6, 0, time.UTC)},
			} {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, c.rel), &st); err != nil {
					t.Fatal(err)
				}
				if got := time.Unix(st.Mtim.Unix()); !got.Equal(c.mtime) {
					t.Errorf("%s: mtime %v, want %v", c.rel, got.UTC(), c.mtime)
				}
				if want := c.atime; !want.IsZero() {
					if got := time.Unix(st.Atim.Unix()); !got.Equal(want) {
						t.Errorf("%s: atime %v, want %v", c.rel, got.UTC(), want)
					}
				}
			}
		}, want: []string{
			"d/ dir 0755 0:0", `d/f file 0644 0:0 "f"`, `d/later file 0644 0:0 "l"`, "d/p fifo 0666 0:0", "d/s -> f 0:0",
		}},
	}
}

// sparseDigest is the digest of testdata/sparse-*.tar's file: 10 MiB of
// zeros with "hello" at offset 5000000 (GNU tar --sparse).
var sparseDigest = sync.OnceValue(func() string {
	b := make([]byte, 10<<20)
	copy(b[5000000:], "hello")
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
})

// holesDigest is the digest of sparse-holes.tar's file: 64 MiB of zeros
// between "start" and "ended".
var holesDigest = sync.OnceValue(func() string {
	b := make([]byte, 64<<20)
	copy(b, "start")
	copy(b[len(b)-5:], "ended")
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
})

// checkSparse checks that the sparse file kept its holes.
func checkSparse(t *testing.T, root string) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "big"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 10<<20 || st.Blocks*512 > 1<<20 {
		t.Errorf("big: size %d using %d bytes, want 10 MiB using less than 1 MiB", st.Size, st.Blocks*512)
	}
}

// corpusData returns the tar of every corpus file, by file name.
func corpusData(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, c := range corpus() {
		if c.data == nil {
			continue
		}
		if _, dup := files[c.tarFile()]; dup {
			t.Fatalf("corpus file %s is defined twice", c.tarFile())
		}
		files[c.tarFile()] = c.data()
	}
	return files
}

// TestCorpusFiles checks that testdata holds the corpus as defined here
// (go test -run TestCorpusFiles -update rewrites it).
func TestCorpusFiles(t *testing.T) {
	files := corpusData(t)
	if *update {
		for name, data := range files {
			if err := os.WriteFile(filepath.Join("testdata", name+".tar"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range corpus() {
		if c.static {
			if _, err := os.Stat(filepath.Join("testdata", c.tarFile()+".tar")); err != nil {
				t.Errorf("static corpus file: %v", err)
			}
			files[c.tarFile()] = nil
		}
	}
	onDisk, err := filepath.Glob(filepath.Join("testdata", "*.tar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		if _, ok := files[strings.TrimSuffix(filepath.Base(p), ".tar")]; !ok {
			t.Errorf("%s is not in the corpus definitions; remove it or define it", p)
		}
	}
	for name, data := range files {
		if data == nil {
			continue // static: loaded by TestCorpus
		}
		got, err := os.ReadFile(filepath.Join("testdata", name+".tar"))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("testdata/%s.tar is missing or stale (err %v); run go test -run TestCorpusFiles -update", name, err)
		}
	}
}

// sandbox is the neighbourhood of one Apply: root is the layer
// directory, outside a sibling the corpus tries to reach.
type sandbox struct {
	dir, root, outside string
}

func newSandbox(t testing.TB) *sandbox {
	return newSandboxIn(t, "")
}

// newSandboxIn makes the sandbox in a new directory under base, or in
// t.TempDir() when base is "".
func newSandboxIn(t testing.TB, base string) *sandbox {
	t.Helper()
	requireRoot(t)
	ensureCanary(t)
	var d string
	if base == "" {
		d = t.TempDir()
	} else {
		var err error
		if d, err = os.MkdirTemp(base, "skiff-unpack-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	s := &sandbox{dir: d, root: filepath.Join(d, "root"), outside: filepath.Join(d, "outside")}
	for _, p := range []string{s.root, s.outside} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "secret"), []byte(canarySecret), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkUntouched fails t when anything appeared or changed outside root,
// extra naming the sandbox entries allowed besides root and outside.
func (s *sandbox) checkUntouched(t testing.TB, extra ...string) {
	t.Helper()
	names, err := readDirNames(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"outside", "root"}, extra...)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("the sandbox holds %q, want %q", names, want)
	}
	checkSecretDir(t, s.outside)
	checkSecretDir(t, canaryDir)
}

// checkSecretDir fails t unless dir holds only the secret, unchanged and
// not linked.
func checkSecretDir(t testing.TB, dir string) {
	t.Helper()
	names, err := readDirNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"secret"}) {
		t.Errorf("%s holds %q, want only the secret", dir, names)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "secret"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		t.Errorf("%s/secret has mode %o and %d links, want a regular file with 1", dir, st.Mode, st.Nlink)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "secret")); err != nil || string(got) != canarySecret {
		t.Errorf("%s/secret reads %q, %v", dir, got, err)
	}
}

func readDirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, nil
}

// ensureCanary creates the host canary directory when it is missing;
// concurrent fuzz workers may race here, so the secret is renamed into
// place.
func ensureCanary(t testing.TB) {
	t.Helper()
	if got, err := os.ReadFile(filepath.Join(canaryDir, "secret")); err == nil && string(got) == canarySecret {
		return
	}
	if err := os.MkdirAll(canaryDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", canaryDir, os.Getpid())
	if err := os.WriteFile(tmp, []byte(canarySecret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(canaryDir, "secret")); err != nil {
		t.Fatal(err)
	}
}

func sameRoot(a, b *RootEntry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID && a.GID == b.GID && a.Mode == b.Mode && a.ModTime.Equal(b.ModTime) && a.AccessTime.Equal(b.AccessTime)
}

// checkRootDir fails t unless the layer directory kept the mode, owner
// and times the sandbox gave it: a layer's root entry is only reported.
func checkRootDir(t *testing.T, root string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 || st.Mtim.Sec == epoch.Unix() {
		t.Errorf("the layer directory is mode %04o owned by %d:%d, modified %d; want it untouched (0755 0:0)", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec)
	}
}

// requireRoot fails a test that needs root: skipping would hide that the
// unpacker's security checks went untested.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (it creates devices, sets trusted xattrs and owners): run it as root")
	}
}

func TestCorpus(t *testing.T) {
	cases := corpus()
	files := map[string][]byte{}
	for _, c := range cases {
		switch {
		case c.static:
			data, err := os.ReadFile(filepath.Join("testdata", c.tarFile()+".tar"))
			if err != nil {
				t.Fatal(err)
			}
			files[c.tarFile()] = data
		case c.data != nil:
			files[c.tarFile()] = c.data()
		}
	}
	byName := map[string]corpusCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			var lowers []string
			for i := len(c.lowers) - 1; i >= 0; i-- {
				lc := byName[c.lowers[i]]
				ldir := filepath.Join(s.dir, "lower-"+lc.name)
				if err := os.Mkdir(ldir, 0o755); err != nil {
					t.Fatal(err)
				}
				if _, err := Apply(context.Background(), ldir, bytes.NewReader(files[lc.tarFile()]), Options{Lowers: lowers, AllowDevices: lc.allowDevices}); err != nil {
					t.Fatalf("unpack lower %s: %v", lc.name, err)
				}
				lowers = append([]string{ldir}, lowers...)
			}
			var lowerBefore [][]string
			var extra []string
			for _, l := range lowers {
				lowerBefore = append(lowerBefore, treeLines(t, l))
				extra = append(extra, filepath.Base(l))
			}

			data, ok := files[c.tarFile()]
			if !ok {
				t.Fatalf("no corpus file %s", c.tarFile())
			}
			st, err := Apply(context.Background(), s.root, bytes.NewReader(data), Options{Lowers: lowers, AllowDevices: c.allowDevices})

			if err == nil && c.check != nil {
				c.check(t, s.root) // first: walking the tree reads files and moves atimes
			}
			s.checkUntouched(t, extra...)
			for i, l := range lowers {
				if d := diffLines(lowerBefore[i], treeLines(t, l)); d != "" {
					t.Errorf("lower %s changed:%s", l, d)
				}
			}
			got := treeLines(t, s.root)
			if c.wantEntry != "" || c.wantInvalid {
				if err == nil {
					t.Fatalf("Apply succeeded, want a refusal; tree:\n%s", strings.Join(got, "\n"))
				}
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error %q is not ErrInvalid", err)
				}
				var ee *EntryError
				switch {
				case c.wantEntry != "" && !errors.As(err, &ee):
					t.Errorf("error %q is not an *EntryError", err)
				case c.wantEntry != "" && ee.Name != c.wantEntry:
					t.Errorf("refused entry %q (%v), want %q", ee.Name, err, c.wantEntry)
				case c.wantInvalid && errors.As(err, &ee):
					t.Errorf("error %q names an entry, want the stream refused as a whole", err)
				}
				if !strings.Contains(err.Error(), c.wantReason) {
					t.Errorf("error %q does not say %q", err, c.wantReason)
				}
				if st != (Stats{}) {
					t.Errorf("stats %+v after a refusal, want zero", st)
				}
				if len(got) > 0 {
					t.Errorf("the layer directory is not empty after a refusal:\n%s", strings.Join(got, "\n"))
				}
				if v, err := unix.Lgetxattr(s.root, opaqueXattr, make([]byte, 8)); err == nil {
					t.Errorf("the layer directory keeps an opaque xattr (%d bytes) after a refusal", v)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if d := diffLines(c.want, got); d != "" {
				t.Errorf("unpacked tree differs:%s", d)
			}
			if st.SkippedDevices != c.wantSkipped || st.FirstSkippedDevice != c.wantFirstSkipped {
				t.Errorf("skipped %d devices, the first %q; want %d, %q", st.SkippedDevices, st.FirstSkippedDevice, c.wantSkipped, c.wantFirstSkipped)
			}
			if !sameRoot(st.Root, c.wantRoot) {
				t.Errorf("root entry %+v, want %+v", st.Root, c.wantRoot)
			}
			checkRootDir(t, s.root)
		})
	}
}
