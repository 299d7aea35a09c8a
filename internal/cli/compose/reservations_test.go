package compose

import (
	"context"
	"testing"
)

// TestCreateRequestReservations: deploy.resources.reservations.memory and
// mem_reservation become the container's memory reservation.
func TestCreateRequestReservations(t *testing.T) {
	p, err := Load(context.Background(), loadInline(t, `name: res
services:
  deploy:
    image: busybox
    deploy:
      resources:
        limits: {memory: 128M}
        reservations: {memory: 32M}
  short:
    image: busybox
    mem_reservation: 16m
`))
	if err != nil {
		t.Fatal(err)
	}
	if issues := Unsupported(p); len(issues) != 0 {
		t.Errorf("reported unsupported: %v", issues)
	}
	for name, want := range map[string]int64{"deploy": 32 << 20, "short": 16 << 20} {
		req, err := CreateRequest(p, p.Services[name], 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Config.Resources.MemoryReservationBytes; got != want {
			t.Errorf("%s: memory reservation %d, want %d", name, got, want)
		}
	}
}
