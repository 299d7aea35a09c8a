package unpack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"

	"skiff.dev/skiff/internal/image/unpack"
)

// ExampleApply unpacks a layer that adds a file and deletes one from the
// layers below.
func ExampleApply() {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd", Mode: 0o644, Size: 6})
	tw.Write([]byte("hello\n"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.issue", Mode: 0o644})
	tw.Close()

	dir, err := os.MkdirTemp("", "layer-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	st, err := unpack.Apply(context.Background(), dir, &layer, unpack.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Lstat(dir + "/etc/issue")
	fmt.Println(st.Entries, "entries,", st.Bytes, "bytes; etc/issue is a whiteout:", fi.Mode()&os.ModeCharDevice != 0)
	// Output: 2 entries, 6 bytes; etc/issue is a whiteout: true
}
