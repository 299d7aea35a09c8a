package gitops

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// Webhook limits.
const (
	// MaxHookBody bounds a webhook call's body (GitHub's own limit is 25 MB;
	// a push event is far smaller).
	MaxHookBody = 5 << 20
	// ReplayWindow is how far a call's timestamp may be from now, and how
	// long a delivery ID is remembered.
	ReplayWindow = 5 * time.Minute
	// maxDeliveries bounds the delivery IDs remembered.
	maxDeliveries = 10000
)

// HookCall is what a webhook call carries, as far as checking it goes.
type HookCall struct {
	Header http.Header
	Body   []byte
}

// CheckHook verifies a webhook call against secret, in the first form the
// call carries: GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the body,
// "sha256=HEX"), Gitea's X-Gitea-Signature (the same, bare hex),
// GitLab's X-Gitlab-Token (the secret itself) or a generic
// "Authorization: Bearer SECRET". It returns the call's delivery ID
// (X-GitHub-Delivery, X-Gitea-Delivery, X-Gitlab-Event-UUID or
// X-Skiff-Delivery), which every call must carry, so that a replay can be
// refused. A call carrying X-Skiff-Timestamp (Unix seconds) must be
// within ReplayWindow of now. Failures are ErrUnauthorized (or
// ErrInvalid for a call missing its delivery ID) and never say which
// part of a secret was wrong.
func CheckHook(c HookCall, secret []byte, now time.Time) (delivery string, err error) {
	h := c.Header
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		if !ok || !validMAC(sig, c.Body, secret) {
			return "", errdefs.Unauthorized("the X-Hub-Signature-256 signature does not match the source's webhook secret")
		}
		delivery = first(h, "X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", "X-Skiff-Delivery")
	case h.Get("X-Gitea-Signature") != "":
		if !validMAC(h.Get("X-Gitea-Signature"), c.Body, secret) {
			return "", errdefs.Unauthorized("the X-Gitea-Signature signature does not match the source's webhook secret")
		}
		delivery = first(h, "X-Gitea-Delivery", "X-Skiff-Delivery")
	case h.Get("X-Gitlab-Token") != "":
		if !equalSecret(h.Get("X-Gitlab-Token"), secret) {
			return "", errdefs.Unauthorized("the X-Gitlab-Token does not match the source's webhook secret")
		}
		delivery = first(h, "X-Gitlab-Event-UUID", "Idempotency-Key", "X-Skiff-Delivery")
	case strings.HasPrefix(h.Get("Authorization"), "Bearer "):
		if !equalSecret(strings.TrimPrefix(h.Get("Authorization"), "Bearer "), secret) {
			return "", errdefs.Unauthorized("the bearer token does not match the source's webhook secret")
		}
		delivery = first(h, "X-Skiff-Delivery", "X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID")
	default:
		return "", errdefs.Unauthorized("the call is not signed: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea), X-Gitlab-Token (GitLab) or Authorization: Bearer with the webhook secret")
	}
	if ts := h.Get("X-Skiff-Timestamp"); ts != "" {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return "", errdefs.Invalid("X-Skiff-Timestamp %q must be Unix seconds", ts)
		}
		if d := now.Sub(time.Unix(sec, 0)); d > ReplayWindow || d < -ReplayWindow {
			return "", errdefs.Unauthorized("X-Skiff-Timestamp is %s away from the daemon's clock, beyond %s: refused as a possible replay", d.Round(time.Second), ReplayWindow)
		}
	}
	if delivery == "" {
		return "", errdefs.Invalid("the call has no delivery ID: send X-Skiff-Delivery with a unique value per call (GitHub, Gitea and GitLab send theirs)")
	}
	return delivery, nil
}

func first(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func validMAC(sigHex string, body, secret []byte) bool {
	sig, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

func equalSecret(got string, secret []byte) bool {
	return len(secret) > 0 && subtle.ConstantTimeCompare([]byte(got), secret) == 1
}

// deliveries remembers the delivery IDs seen within ReplayWindow.
type deliveries struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// fresh records id at now and reports whether it was not seen within
// ReplayWindow. Entries older than the window are dropped; beyond
// maxDeliveries the oldest go first.
func (d *deliveries) fresh(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	if t, ok := d.seen[id]; ok && now.Sub(t) < ReplayWindow {
		return false
	}
	if len(d.seen) >= maxDeliveries {
		var oldest string
		var ot time.Time
		for k, t := range d.seen {
			if now.Sub(t) >= ReplayWindow {
				delete(d.seen, k)
				continue
			}
			if oldest == "" || t.Before(ot) {
				oldest, ot = k, t
			}
		}
		if len(d.seen) >= maxDeliveries {
			delete(d.seen, oldest)
		}
	}
	d.seen[id] = now
	return true
}
