package gitops

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestCheckHook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := `{"ref":"refs/heads/main"}`
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name     string
		header   http.Header
		body     string
		delivery string
		cat      error
	}{
		{"github", h("X-Hub-Signature-256", "sha256="+sign("s3cret", body), "X-GitHub-Delivery", "g1"), body, "g1", nil},
		{"github bad signature", h("X-Hub-Signature-256", "sha256="+sign("wrong", body), "X-GitHub-Delivery", "g1"), body, "", errdefs.ErrUnauthorized},
		{"github body changed", h("X-Hub-Signature-256", "sha256="+sign("s3cret", body), "X-GitHub-Delivery", "g1"), body + " ", "", errdefs.ErrUnauthorized},
		{"github without prefix", h("X-Hub-Signature-256", sign("s3cret", body), "X-GitHub-Delivery", "g1"), body, "", errdefs.ErrUnauthorized},
		{"gitea", h("X-Gitea-Signature", sign("s3cret", body), "X-Gitea-Delivery", "t1"), body, "t1", nil},
		{"gitea bad", h("X-Gitea-Signature", "zz", "X-Gitea-Delivery", "t1"), body, "", errdefs.ErrUnauthorized},
		{"gitlab", h("X-Gitlab-Token", "s3cret", "X-Gitlab-Event-UUID", "l1"), body, "l1", nil},
		{"gitlab bad", h("X-Gitlab-Token", "s3cre", "X-Gitlab-Event-UUID", "l1"), body, "", errdefs.ErrUnauthorized},
		{"bearer", h("Authorization", "Bearer s3cret", "X-Skiff-Delivery", "b1"), body, "b1", nil},
		{"bearer bad", h("Authorization", "Bearer nope", "X-Skiff-Delivery", "b1"), body, "", errdefs.ErrUnauthorized},
		{"unsigned", h("X-Skiff-Delivery", "b1"), body, "", errdefs.ErrUnauthorized},
		{"no delivery", h("Authorization", "Bearer s3cret"), body, "", errdefs.ErrInvalid},
		{"fresh timestamp", h("Authorization", "Bearer s3cret", "X-Skiff-Delivery", "b2", "X-Skiff-Timestamp", strconv.FormatInt(now.Unix()-60, 10)), body, "b2", nil},
		{"old timestamp", h("Authorization", "Bearer s3cret", "X-Skiff-Delivery", "b3", "X-Skiff-Timestamp", strconv.FormatInt(now.Unix()-600, 10)), body, "", errdefs.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := CheckHook(HookCall{Header: tc.header, Body: []byte(tc.body)}, []byte("s3cret"), now)
			if tc.cat != nil {
				if !errors.Is(err, tc.cat) {
					t.Fatalf("err = %v, want %v", err, tc.cat)
				}
				return
			}
			if err != nil || id != tc.delivery {
				t.Fatalf("delivery %q, err %v; want %q", id, err, tc.delivery)
			}
		})
	}
}

func TestDeliveriesRefuseReplays(t *testing.T) {
	var d deliveries
	now := time.Unix(1_800_000_000, 0)
	if !d.fresh("a", now) {
		t.Fatal("first delivery refused")
	}
	if d.fresh("a", now.Add(time.Minute)) {
		t.Fatal("a replay within the window was accepted")
	}
	if !d.fresh("a", now.Add(ReplayWindow+time.Second)) {
		t.Fatal("a delivery ID beyond the window was refused")
	}
	for i := 0; i < maxDeliveries+10; i++ {
		d.fresh(strconv.Itoa(i), now)
	}
	if len(d.seen) > maxDeliveries {
		t.Fatalf("%d delivery IDs kept, bound is %d", len(d.seen), maxDeliveries)
	}
}
