package app

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkLoad(b *testing.B) {
	in, err := os.ReadFile("testdata/valid/everything.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Load(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNeedsNewRevision(b *testing.B) {
	old, new := baseSpec(), baseSpec()
	new.Image = "localhost/shop:1.5"
	for b.Loop() {
		NeedsNewRevision(old, new)
	}
}
