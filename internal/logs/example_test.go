package logs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/logs"
)

func ExampleParse() {
	e, err := logs.Parse([]byte("2026-11-25T18:14:42.414126137+01:00 stderr P disk almost fu"))
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Time, e.Stream, e.Partial, e.Line)
	// Output: 2026-11-25 17:14:42.414126137 +0000 UTC stderr true disk almost fu
}

func ExampleRead() {
	dir, err := os.MkdirTemp("", "logs-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ctr.log")
	// The previous file, kept after a rotation, is read first.
	os.WriteFile(path+".1", []byte("2026-11-25T17:00:00.000000000+00:00 stdout F starting\n"), 0o600)
	os.WriteFile(path, []byte(
		"2026-11-25T17:00:01.000000000+00:00 stdout F listening on :8080\n"+
			"not a record\n"+
			"2026-11-25T17:00:02.000000000+00:00 stderr F GET /missing 404\n"), 0o600)

	skipped := 0
	opts := logs.Options{Tail: 2, OnMalformed: func(error) { skipped++ }}
	err = logs.Read(context.Background(), path, opts, func(e api.LogEntry) error {
		fmt.Printf("%s %s %s\n", e.Time.Format("15:04:05"), e.Stream, e.Line)
		return nil
	})
	fmt.Println("error:", err, "skipped:", skipped)
	// Output:
	// 17:00:01 stdout listening on :8080
	// 17:00:02 stderr GET /missing 404
	// error: <nil> skipped: 1
}
