package api

import "time"

// AnnotationSource is the annotation on an App naming the source that
// applied it and owns it (skiff source). An App without it is owned by no
// source, and no source changes or deletes it.
const AnnotationSource = "skiff.dev/source"

// EventKindSource is the Kind of a source's events.
const EventKindSource = "Source"

// Source is a git repository whose App documents skiff keeps applied: it
// is fetched on a timer and on webhook calls, every App under its path is
// validated, then applied, and the Apps it no longer declares pruned.
type Source struct {
	// Name identifies the source: a DNS label.
	Name string `json:"name"`
	// Created is when the source was added.
	Created time.Time    `json:"created,omitzero"`
	Spec    SourceSpec   `json:"spec"`
	Status  SourceStatus `json:"status,omitzero"`
}

// SourceSpec is what a source follows and how.
type SourceSpec struct {
	// Git is the repository's URL: https://, http://, ssh://, USER@HOST:PATH
	// or file://.
	Git string `json:"git"`
	// Branch, Tag and Semver choose the commit: the head of a branch, a
	// tag, or the highest tag matching a semantic version range such as
	// ">=1.2.0 <2" or "~1.4". At most one is set; none follows the
	// default branch (HEAD).
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Semver string `json:"semver,omitempty"`
	// Path is the directory of the App documents in the repository
	// (every .yaml, .yml and .json file under it); "" is the whole
	// repository.
	Path string `json:"path,omitempty"`
	// Interval is how often the repository is polled (default 30s).
	Interval Duration `json:"interval,omitzero"`
	// SSHKeyFile is a private key file on the daemon's host for ssh://
	// URLs; KnownHostsFile (default ~/.ssh/known_hosts of the daemon's
	// user) is checked against the server's host key.
	SSHKeyFile     string `json:"sshKeyFile,omitempty"`
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
	// TokenSecret names a skiff secret holding the HTTPS token (its key
	// "token", or its only key), sent as the password of basic auth.
	TokenSecret string `json:"tokenSecret,omitempty"`
	// CABundle is PEM certificates (a CA bundle) trusted for an https://
	// repository besides the system's, for a git host whose certificate
	// a private authority signed.
	CABundle string `json:"caBundle,omitempty"`
	// WebhookSecret names a skiff secret (key "token" or its only key)
	// that webhook calls are checked against; without it the webhook is
	// off.
	WebhookSecret string `json:"webhookSecret,omitempty"`
	// VerifySSHKeys and VerifyGPGKeys, when set, are the only keys whose
	// signed commits are applied: SSH public keys (authorized_keys or
	// allowed_signers lines) and an armored OpenPGP public key ring. An
	// unsigned commit, or one signed by another key, fails the sync.
	VerifySSHKeys string `json:"verifySSHKeys,omitempty"`
	VerifyGPGKeys string `json:"verifyGPGKeys,omitempty"`
	// Prune deletes the Apps the source applied and no longer declares
	// (default true).
	Prune *bool `json:"prune,omitempty"`
	// Suspend stops applying: syncs only report drift.
	Suspend bool `json:"suspend,omitempty"`
}

// Source condition reasons and sync results.
const (
	SourceResultApplied   = "Applied"   // the commit's Apps were applied (something changed)
	SourceResultUnchanged = "Unchanged" // everything already was as declared
	SourceResultFailed    = "Failed"    // nothing was changed, or the sync stopped part way (see Message)
	SourceResultDrift     = "Drift"     // suspended: Apps differ from the commit, not reverted
)

// SourceStatus is what the last syncs found and did.
type SourceStatus struct {
	// Ready is true when the last sync succeeded and every App the
	// source applied is Ready.
	Ready bool `json:"ready"`
	// Message says why the source is not Ready.
	Message string `json:"message,omitempty"`
	// Commit is the commit the source's Apps were last applied from;
	// Ref is the branch or tag it was read from.
	Commit string `json:"commit,omitempty"`
	Ref    string `json:"ref,omitempty"`
	// LastAttemptedCommit is the commit of the last sync, applied or not.
	LastAttemptedCommit string `json:"lastAttemptedCommit,omitempty"`
	// LastSync is when the last sync ended, with its result
	// (SourceResult...) and, for a failure, the error.
	LastSync   time.Time `json:"lastSync,omitzero"`
	LastResult string    `json:"lastResult,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
	// Syncing is the commit a sync is applying now; a daemon that stopped
	// part way through finds it set and syncs again at start.
	Syncing string `json:"syncing,omitempty"`
	// Objects are the Apps the source declares, with what the last sync
	// did to each.
	Objects []SourceObject `json:"objects,omitempty"`
	// Drift lists the Apps the last sync found changed by hand (or
	// deleted) since the source applied them: reverted by that sync, or
	// only reported while the source is suspended.
	Drift []string `json:"drift,omitempty"`
}

// SourceObject is one App a source declares.
type SourceObject struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Action is what the last sync did: created, configured, unchanged,
	// pruned or failed.
	Action string `json:"action"`
	// Ready is the App's Ready condition now.
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
	// Diff is, in a SourceDiff, the unified diff of the App as stored and
	// as the commit declares it.
	Diff string `json:"diff,omitempty"`
}

// SourceDiff is what a sync of a source would do now (skiff source diff).
type SourceDiff struct {
	Source  string         `json:"source"`
	Commit  string         `json:"commit"`
	Ref     string         `json:"ref"`
	Objects []SourceObject `json:"objects,omitempty"`
}

// SourceHistoryEntry is one sync that changed something or failed.
type SourceHistoryEntry struct {
	Commit   string        `json:"commit"`
	Time     time.Time     `json:"time"`
	Result   string        `json:"result"`
	Duration time.Duration `json:"duration"`
	Message  string        `json:"message,omitempty"`
	// Objects are the per-App results of that sync.
	Objects []SourceObject `json:"objects,omitempty"`
}

// SourceHookResponse answers an accepted webhook call.
type SourceHookResponse struct {
	Source string `json:"source"`
	Queued bool   `json:"queued"`
}
