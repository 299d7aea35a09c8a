// Package gitops keeps the Apps declared in git repositories applied.
//
// A source (api.Source) names a repository, a ref (branch, tag or a
// semantic version range over tags) and a path. The Manager runs one
// reconcile loop per source, woken by its poll interval, by Sync and by
// webhook calls. Each sync:
//
//  1. lists the remote's refs and picks the commit (Resolve);
//  2. when that commit is new, fetches it shallowly into memory and loads
//     every App document under the path (LoadTree) — one bad file fails
//     the sync with its file, line and field, and nothing changes; Secret
//     documents are SOPS-encrypted and are decrypted with the daemon's age
//     keys (Decrypt) at every sync, before anything is applied;
//  3. plans (Plan, a pure function) against the Apps this source owns —
//     those whose annotation api.AnnotationSource names it — refusing
//     Apps owned by another source or by none;
//  4. applies the creates and updates, then prunes what the source owned
//     and no longer declares, recording the commit, the per-App results,
//     an event and a history entry.
//
// A hand edit to an owned App is drift: the next sync reports it and
// reverts it, or only reports it while the source is suspended. A sync
// under way is recorded (status.syncing) before it changes anything, so a
// daemon killed part way syncs again when it starts and converges.
package gitops
