package controller

import (
	"context"
	"strings"
	"testing"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// fakeNetworks knows networks by name: true for a bridge network, false
// for one that cannot be a further network.
type fakeNetworks map[string]bool

func (f fakeNetworks) CheckAttachments(_ context.Context, _ string, extra []api.NetworkAttachment) error {
	for _, x := range extra {
		bridge, ok := f[x.Network]
		if !ok {
			return errdefs.NotFound("network %s not found", x.Network)
		}
		if !bridge {
			return errdefs.Invalid("network %s is a CNI network", x.Network)
		}
	}
	return nil
}

var _ Networks = fakeNetworks{}

// TestCheckNetworks: a revision whose further network is missing, or
// cannot be joined, has the NetworkNotFound problem naming it, cleared
// once the network is there; another problem of the revision is kept.
func TestCheckNetworks(t *testing.T) {
	nets := fakeNetworks{}
	c := &Controller{cfg: Config{Networks: nets}}
	rev := api.Revision{Name: "shop-00001", Spec: api.RevisionSpec{Networks: []api.AppNetworkAttachment{{Name: "shop_default"}}}}
	st := &appState{imageIDs: map[string]string{"shop-00001": "sha256:1"}, revErrs: map[string]revError{}}
	ctx := context.Background()

	c.checkNetworks(ctx, st, rev)
	e := st.revErrs["shop-00001"]
	if e.reason != api.ReasonNetworkNotFound || !strings.Contains(e.message, "network shop_default does not exist") {
		t.Fatalf("missing network: %+v", e)
	}
	nets["shop_default"] = false
	c.checkNetworks(ctx, st, rev)
	if e := st.revErrs["shop-00001"]; e.reason != api.ReasonNetworkNotFound || !strings.Contains(e.message, "network shop_default cannot be joined") {
		t.Fatalf("CNI network: %+v", e)
	}
	nets["shop_default"] = true
	c.checkNetworks(ctx, st, rev)
	if e, ok := st.revErrs["shop-00001"]; ok {
		t.Fatalf("problem kept once the network exists: %+v", e)
	}

	delete(nets, "shop_default")
	st.revErrs["shop-00001"] = revError{api.ReasonSecretNotFound, "secret db does not exist"}
	c.checkNetworks(ctx, st, rev)
	if e := st.revErrs["shop-00001"]; e.reason != api.ReasonSecretNotFound {
		t.Fatalf("another problem was replaced: %+v", e)
	}
	delete(st.revErrs, "shop-00001")
	delete(st.imageIDs, "shop-00001")
	c.checkNetworks(ctx, st, rev)
	if e, ok := st.revErrs["shop-00001"]; ok {
		t.Fatalf("a revision whose image is not resolved got %+v", e)
	}
}
