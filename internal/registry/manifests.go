package registry

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/image"
)

// manifestSummary is what the registry reads of a stored manifest: the
// descriptors it names and what the referrers API reports.
type manifestSummary struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Layers       []v1.Descriptor   `json:"layers"`
	Manifests    []v1.Descriptor   `json:"manifests"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// knownManifestTypes are the media types strict mode accepts.
var knownManifestTypes = map[types.MediaType]bool{
	types.OCIManifestSchema1: true, types.OCIImageIndex: true,
	types.DockerManifestSchema2: true, types.DockerManifestList: true,
}

func (g *Registry) serveManifest(w http.ResponseWriter, r *http.Request, rt route) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		g.getManifest(w, r, rt)
	case http.MethodPut:
		g.putManifest(w, r, rt)
	case http.MethodDelete:
		g.deleteManifest(w, r, rt)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on a manifest", r.Method)
	}
}

func (g *Registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) {
	desc, err := g.cfg.Store.ResolveManifest(rt.repo, rt.arg)
	if err != nil {
		g.writeStoreError(w, err, "MANIFEST_UNKNOWN")
		return
	}
	raw, err := g.cfg.Store.ReadManifest(desc.Digest)
	if err != nil {
		g.writeStoreError(w, err, "MANIFEST_UNKNOWN")
		return
	}
	w.Header().Set("Content-Type", string(desc.MediaType))
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Etag", `"`+desc.Digest.String()+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(raw)
}

// putManifest stores a manifest as it came: it checks its digest (when
// pushed by digest), that it is JSON whose mediaType (if any) is its
// Content-Type, and that the blobs it names are present.
func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxManifestSize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "read the manifest: %v", err)
		return
	}
	if int64(len(raw)) > g.cfg.MaxManifestSize {
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the manifest is larger than the limit of %d bytes", g.cfg.MaxManifestSize)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var sum manifestSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "the manifest is not valid JSON: %v", err)
		return
	}
	if mt == "" {
		mt = sum.MediaType
	}
	if mt == "" {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "the manifest has no media type: send it as the Content-Type")
		return
	}
	if g.cfg.Strict && !knownManifestTypes[types.MediaType(mt)] {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest media type %q is not an OCI or Docker image manifest or index, which this registry requires (it runs with --registry-strict)", mt)
		return
	}
	if sum.MediaType != "" && sum.MediaType != mt {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "the manifest's mediaType %q differs from its Content-Type %q", sum.MediaType, mt)
		return
	}
	desc := v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(raw)), Digest: digestOf("sha256", raw)}
	// The tags: the reference, or the tag parameters of a push by digest.
	var tags []string
	if h, ok := image.ValidDigest(rt.arg); ok {
		if got := digestOf(h.Algorithm, raw); got != h {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "the manifest has digest %s, not %s", got, h)
			return
		}
		desc.Digest = h
		tags = r.URL.Query()["tag"]
	} else {
		tags = []string{rt.arg}
	}
	for _, tag := range tags {
		if !tagRE.MatchString(tag) {
			writeError(w, http.StatusBadRequest, "TAG_INVALID", "%q is neither a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) nor a digest", tag)
			return
		}
	}
	needs := needed(&sum)
	for _, h := range needs {
		if _, ok := g.cfg.Store.BlobSize(h); !ok {
			writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "the manifest names %s, which is not in the registry: push it first", h)
			return
		}
	}
	if len(tags) == 0 {
		tags = []string{""} // by digest only
	}
	for _, tag := range tags {
		if err := g.cfg.Store.PutManifest(r.Context(), rt.repo, tag, desc, raw, needs); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "%s: push it first", err.Error())
				return
			}
			g.writeStoreError(w, err, "MANIFEST_INVALID")
			return
		}
		if tag != "" && tag != rt.arg {
			w.Header().Add("OCI-Tag", tag)
		}
	}
	if sum.Subject != nil {
		w.Header().Set("OCI-Subject", sum.Subject.Digest.String())
	}
	w.Header().Set("Location", "/v2/"+rt.name+"/manifests/"+desc.Digest.String())
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// needed returns the blobs and manifests m names that must be present.
// Non-distributable layers and layers with URLs are not pushed.
func needed(m *manifestSummary) []v1.Hash {
	var need []v1.Hash
	if m.Config != nil {
		need = append(need, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if strings.Contains(string(l.MediaType), "nondistributable") || strings.Contains(string(l.MediaType), "foreign") || len(l.URLs) > 0 {
			continue
		}
		need = append(need, l.Digest)
	}
	for _, c := range m.Manifests {
		need = append(need, c.Digest)
	}
	return need
}

func digestOf(alg string, b []byte) v1.Hash {
	if alg == "sha512" {
		s := sha512.Sum512(b)
		return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(s[:])}
	}
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func (g *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) {
	if !g.cfg.AllowDelete {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "deletes are disabled: start the daemon with --registry-delete to allow them")
		return
	}
	var err error
	if h, ok := image.ValidDigest(rt.arg); ok {
		err = g.cfg.Store.DeleteManifest(r.Context(), rt.repo, h, g.cfg.InUse)
	} else {
		err = g.cfg.Store.DeleteTag(r.Context(), rt.repo, rt.arg)
	}
	if err != nil {
		g.writeStoreError(w, err, "MANIFEST_UNKNOWN")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// page applies the n and last parameters to a sorted list and returns
// the page and the query of the next one ("" when none).
func page(w http.ResponseWriter, r *http.Request, all []string) ([]string, bool) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n=%q is not a number of entries", ns)
			return nil, false
		}
		if n < len(all) {
			next := url.Values{"n": {ns}, "last": {all[n-1 : n][0]}}
			if n == 0 {
				return []string{}, true
			}
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
			all = all[:n]
		}
	}
	if all == nil {
		all = []string{}
	}
	return all, true
}

func (g *Registry) tagsList(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on a tag list", r.Method)
		return
	}
	tags, found, err := g.cfg.Store.RepoTags(rt.repo)
	if err != nil {
		g.writeStoreError(w, err, "NAME_UNKNOWN")
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository %s is not in the registry", rt.name)
		return
	}
	tags, ok := page(w, r, tags)
	if !ok {
		return
	}
	writeJSON(w, "application/json", map[string]any{"name": rt.name, "tags": tags})
}

func (g *Registry) catalog(w http.ResponseWriter, r *http.Request) {
	if _, ok := g.authenticate(w, r, "", false); !ok {
		return
	}
	stored, err := g.cfg.Store.Repositories()
	if err != nil {
		g.writeStoreError(w, err, "NAME_UNKNOWN")
		return
	}
	var names []string
	for _, s := range stored {
		if n, ok := RepoName(s); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names, ok := page(w, r, slices.Compact(names))
	if !ok {
		return
	}
	writeJSON(w, "application/json", map[string]any{"repositories": names})
}

// summary returns the parsed manifest h, cached (manifests are content
// addressed).
func (g *Registry) summary(h v1.Hash) (*manifestSummary, error) {
	g.refMu.Lock()
	s, ok := g.refCache[h]
	g.refMu.Unlock()
	if ok {
		return s, nil
	}
	raw, err := g.cfg.Store.ReadManifest(h)
	if err != nil {
		return nil, err
	}
	s = &manifestSummary{}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(s); err != nil {
		s = &manifestSummary{}
	}
	g.refMu.Lock()
	if len(g.refCache) > 10000 {
		clear(g.refCache)
	}
	g.refCache[h] = s
	g.refMu.Unlock()
	return s, nil
}

// referrers answers the referrers API: the manifests of the repository
// whose subject is the digest, filtered by artifactType when asked.
func (g *Registry) referrers(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method %s is not allowed on referrers", r.Method)
		return
	}
	subject, ok := image.ValidDigest(rt.arg)
	if !ok {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "%q is not a digest", rt.arg)
		return
	}
	filter := r.URL.Query().Get("artifactType")
	descs, err := g.cfg.Store.RepoManifests(rt.repo)
	if err != nil {
		g.writeStoreError(w, err, "NAME_UNKNOWN")
		return
	}
	out := []v1.Descriptor{}
	for _, d := range descs {
		s, err := g.summary(d.Digest)
		if err != nil || s.Subject == nil || s.Subject.Digest != subject {
			continue
		}
		at := s.ArtifactType
		if at == "" && s.Config != nil && d.MediaType.IsImage() {
			at = string(s.Config.MediaType)
		}
		if filter != "" && at != filter {
			continue
		}
		out = append(out, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, ArtifactType: at, Annotations: s.Annotations})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, string(types.OCIImageIndex), v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: out})
}

// repoHasBlob reports whether a manifest of repository repo names blob h,
// directly or through an index.
func (g *Registry) repoHasBlob(repo string, h v1.Hash) bool {
	descs, err := g.cfg.Store.RepoManifests(repo)
	if err != nil {
		return false
	}
	seen := map[v1.Hash]bool{}
	var walk func(d v1.Hash, depth int) bool
	walk = func(d v1.Hash, depth int) bool {
		if d == h {
			return true
		}
		if seen[d] || depth > 8 {
			return false
		}
		seen[d] = true
		s, err := g.summary(d)
		if err != nil {
			return false
		}
		if s.Config != nil && s.Config.Digest == h {
			return true
		}
		for _, l := range s.Layers {
			if l.Digest == h {
				return true
			}
		}
		for _, m := range s.Manifests {
			if walk(m.Digest, depth+1) {
				return true
			}
		}
		return false
	}
	for _, d := range descs {
		if walk(d.Digest, 0) {
			return true
		}
	}
	return false
}
