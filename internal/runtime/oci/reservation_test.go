package oci

import (
	"strings"
	"testing"

	"skiff.dev/skiff/api"
)

// TestMemoryReservation: the reservation becomes the cgroup's soft limit,
// alone or under a limit; above the limit, or negative, it is refused.
func TestMemoryReservation(t *testing.T) {
	r, err := Resources(api.Resources{MemoryReservationBytes: 64 << 20})
	if err != nil || r.Memory == nil || r.Memory.Reservation == nil || *r.Memory.Reservation != 64<<20 || r.Memory.Limit != nil {
		t.Fatalf("reservation alone: %+v, %v", r.Memory, err)
	}
	r, err = Resources(api.Resources{MemoryBytes: 128 << 20, MemoryReservationBytes: 64 << 20})
	if err != nil || *r.Memory.Reservation != 64<<20 || *r.Memory.Limit != 128<<20 {
		t.Fatalf("reservation under a limit: %+v, %v", r.Memory, err)
	}
	for _, bad := range []api.Resources{{MemoryBytes: 64 << 20, MemoryReservationBytes: 128 << 20}, {MemoryReservationBytes: -1}} {
		if _, err := Resources(bad); err == nil || !strings.Contains(err.Error(), "memory reservation") {
			t.Errorf("%+v: %v, want a refusal naming the memory reservation", bad, err)
		}
	}
}
