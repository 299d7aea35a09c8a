package runc

import "testing"

func BenchmarkTraceConmon(b *testing.B) {
	benchCreateStartWait(b, newRuntime(b, WithConmon("/tmp/conmon-strace")))
}
