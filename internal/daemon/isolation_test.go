package daemon

import (
	"errors"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

func TestCheckReplicaLabels(t *testing.T) {
	if err := checkReplicaLabels(map[string]string{"app": "web", "skiff.dev/other": "x"}); err != nil {
		t.Fatal(err)
	}
	err := checkReplicaLabels(map[string]string{"skiff.dev/app": "shop"})
	if !errors.Is(err, errdefs.ErrInvalid) || err.Error() != "label skiff.dev/app is reserved for the replicas of Apps: choose another label" {
		t.Fatalf("got %v", err)
	}
}
