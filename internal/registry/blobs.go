package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"skiff.dev/skiff/internal/image"
)

// copyBufSize is the buffer an upload is copied to disk with.
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// serveBlob answers GET, HEAD and DELETE of a blob. GET and HEAD go
// through http.ServeContent: Range requests work, and the file is sent
// with sendfile over plain HTTP, so a pull copies nothing in skiff.
func (g *Registry) serveBlob(w http.ResponseWriter, r *http.Request, rt route) {
	h, ok := image.ValidDigest(rt.arg)
	if !ok {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "%q is not a digest skiff can address (sha256:<64 hex> or sha512:<128 hex>)", rt.arg)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if _, _, authed := r.BasicAuth(); !authed && !g.repoHasBlob(rt.repo, h) {
			// Anonymous readers get only what the repository's manifests
			// name, not every blob of the store.
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob %s is not in repository %s", h, rt.name)
			return
		}
		f, err := g.cfg.Store.OpenBlob(h)
		if err != nil {
			g.writeStoreError(w, err, "BLOB_UNKNOWN")
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", h.String())
		w.Header().Set("Etag", `"`+h.String()+`"`)
		w.Header().Set("Cache-Control", "max-age=31536000")
		http.ServeContent(w, r, "", time.Time{}, f)
	case http.MethodDelete:
		if !g.cfg.AllowDelete {
			writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "deletes are disabled: start the daemon with --registry-delete to allow them")
			return
		}
		if err := g.cfg.Store.DeleteBlob(r.Context(), h); err != nil {
			g.writeStoreError(w, err, "BLOB_UNKNOWN")
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on a blob", r.Method)
	}
}

// upload is one blob upload session: a file in the store's upload
// directory and the sha256 of what was written so far.
type upload struct {
	id   string
	repo string
	path string

	mu     sync.Mutex // held while a request writes
	f      *os.File
	h      hash.Hash
	offset int64
	done   bool // completed or cancelled: the session is gone
	used   time.Time
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (g *Registry) uploadLocation(rt route, id string) string {
	return "/v2/" + rt.name + "/blobs/uploads/" + id
}

func blobLocation(rt route, h v1.Hash) string {
	return "/v2/" + rt.name + "/blobs/" + h.String()
}

// startUpload answers POST /v2/NAME/blobs/uploads/: a mount (?mount=),
// a monolithic upload (?digest= with the body), or a new session.
func (g *Registry) startUpload(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed here: POST starts an upload", r.Method)
		return
	}
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		if g.mount(w, r, rt, m, q.Get("from")) {
			return
		}
	}
	u, err := g.newUpload(rt)
	if err != nil {
		g.writeStoreError(w, err, "BLOB_UPLOAD_INVALID")
		return
	}
	if d := q.Get("digest"); d != "" {
		u.mu.Lock()
		defer u.mu.Unlock()
		if !g.write(w, r, u, -1) {
			return
		}
		g.finish(w, rt, u, d)
		return
	}
	w.Header().Set("Location", g.uploadLocation(rt, u.id))
	w.Header().Set("Range", "0-0")
	w.Header().Set("Content-Length", "0")
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.WriteHeader(http.StatusAccepted)
}

// mount links an existing blob into rt's repository; all repositories
// share the store's blobs, so it succeeds when the blob is present and
// the client may read the repository it names (if any). It reports
// whether it answered.
func (g *Registry) mount(w http.ResponseWriter, r *http.Request, rt route, digest, from string) bool {
	h, ok := image.ValidDigest(digest)
	if !ok {
		return false
	}
	if from != "" {
		if !nameRE.MatchString(from) || !g.cfg.Access.mayRead(r, from) {
			return false
		}
	}
	if _, ok := g.cfg.Store.BlobSize(h); !ok {
		return false
	}
	g.cfg.Store.LeaseBlob(h)
	w.Header().Set("Location", blobLocation(rt, h))
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return true
}

func (g *Registry) newUpload(rt route) (*upload, error) {
	dir, err := g.cfg.Store.UploadDir()
	if err != nil {
		return nil, err
	}
	id := newID()
	f, err := os.OpenFile(filepath.Join(dir, "upload-"+id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start an upload: %w", err)
	}
	u := &upload{id: id, repo: rt.repo, path: f.Name(), f: f, h: sha256.New(), used: time.Now()}
	g.mu.Lock()
	g.expireLocked()
	g.uploads[id] = u
	g.mu.Unlock()
	return u, nil
}

// expireLocked drops sessions idle for longer than the upload max age.
func (g *Registry) expireLocked() {
	cutoff := time.Now().Add(-g.cfg.UploadMaxAge)
	for id, u := range g.uploads {
		if u.mu.TryLock() {
			if u.used.Before(cutoff) {
				g.dropLocked(u)
				delete(g.uploads, id)
			}
			u.mu.Unlock()
		}
	}
}

// dropLocked ends u and removes its file; the caller holds u.mu.
func (g *Registry) dropLocked(u *upload) {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	os.Remove(u.path)
}

// session returns the live session id of rt's repository, locked, or
// answers BLOB_UPLOAD_UNKNOWN.
func (g *Registry) session(w http.ResponseWriter, rt route) (*upload, bool) {
	g.mu.Lock()
	u := g.uploads[rt.arg]
	g.mu.Unlock()
	if u != nil {
		u.mu.Lock()
		if !u.done && u.repo == rt.repo {
			u.used = time.Now()
			return u, true
		}
		u.mu.Unlock()
	}
	writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload %s is unknown: it completed, was cancelled or expired; start a new one", rt.arg)
	return nil, false
}

func (g *Registry) forget(u *upload) {
	g.mu.Lock()
	delete(g.uploads, u.id)
	g.mu.Unlock()
}

// serveUpload answers PATCH (a chunk), PUT (the last chunk and the
// digest), GET (status) and DELETE (cancel) of an upload session.
func (g *Registry) serveUpload(w http.ResponseWriter, r *http.Request, rt route) {
	u, ok := g.session(w, rt)
	if !ok {
		return
	}
	defer u.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		g.uploadStatus(w, rt, u, http.StatusNoContent)
	case http.MethodDelete:
		g.dropLocked(u)
		g.forget(u)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		start := int64(-1)
		if cr := r.Header.Get("Content-Range"); cr != "" {
			s, e, ok := parseContentRange(cr)
			if !ok || s != u.offset || (r.ContentLength >= 0 && e-s+1 != r.ContentLength) {
				g.uploadStatus(w, rt, u, http.StatusRequestedRangeNotSatisfiable)
				return
			}
			start = s
		}
		if !g.write(w, r, u, start) {
			return
		}
		g.uploadStatus(w, rt, u, http.StatusAccepted)
	case http.MethodPut:
		if r.ContentLength != 0 {
			if cr := r.Header.Get("Content-Range"); cr != "" {
				if s, _, ok := parseContentRange(cr); !ok || s != u.offset {
					g.uploadStatus(w, rt, u, http.StatusRequestedRangeNotSatisfiable)
					return
				}
			}
			if !g.write(w, r, u, -1) {
				return
			}
		}
		g.finish(w, rt, u, r.URL.Query().Get("digest"))
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on an upload", r.Method)
	}
}

func (g *Registry) uploadStatus(w http.ResponseWriter, rt route, u *upload, status int) {
	w.Header().Set("Location", g.uploadLocation(rt, u.id))
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(u.offset-1, 0)))
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// parseContentRange parses "START-END" (inclusive), the form the spec
// uses for chunks, also with a "bytes " prefix.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(s, "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// write appends the request body to u; the caller holds u.mu. A failed
// write ends the session (the client starts again), so a session never
// holds a half-written chunk.
func (g *Registry) write(w http.ResponseWriter, r *http.Request, u *upload, start int64) bool {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	limit := g.cfg.MaxBlobSize - u.offset
	n, err := io.CopyBuffer(io.MultiWriter(u.f, u.h), io.LimitReader(r.Body, limit+1), *bp)
	u.offset += n
	if err == nil && u.offset > g.cfg.MaxBlobSize {
		g.dropLocked(u)
		g.forget(u)
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the blob is larger than the limit of %d bytes (skiff daemon --max-image-size)", g.cfg.MaxBlobSize)
		return false
	}
	if err != nil {
		g.dropLocked(u)
		g.forget(u)
		writeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "upload %s failed while receiving data, start it again: %v", u.id, err)
		return false
	}
	return true
}

// finish completes u as blob digest: it checks the digest of what was
// received and moves the file into the store. The session is gone
// afterwards, whether it succeeded or not.
func (g *Registry) finish(w http.ResponseWriter, rt route, u *upload, digest string) {
	defer g.forget(u)
	want, ok := image.ValidDigest(digest)
	if !ok {
		g.dropLocked(u)
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "digest %q is missing or not one skiff can address (sha256:<64 hex> or sha512:<128 hex>)", digest)
		return
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(u.h.Sum(nil))}
	if want.Algorithm == "sha512" {
		var err error
		if got, err = sha512Of(u.path); err != nil {
			g.dropLocked(u)
			g.writeStoreError(w, err, "BLOB_UPLOAD_INVALID")
			return
		}
	}
	if got != want {
		g.dropLocked(u)
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "the uploaded content has digest %s, not %s", got, want)
		return
	}
	u.done = true
	if err := u.f.Close(); err != nil {
		os.Remove(u.path)
		g.writeStoreError(w, err, "BLOB_UPLOAD_INVALID")
		return
	}
	if err := g.cfg.Store.CommitUpload(u.path, want); err != nil {
		g.writeStoreError(w, err, "BLOB_UPLOAD_INVALID")
		return
	}
	w.Header().Set("Location", blobLocation(rt, want))
	w.Header().Set("Docker-Content-Digest", want.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func sha512Of(path string) (v1.Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha512", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
