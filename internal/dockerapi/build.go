package dockerapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/apiserver"
)

// buildOptions reads the query of POST /build (the classic builder's
// parameters) into skiff's build options. Parameters that only tune
// Docker's own builder (rm, forcerm, memory, cpu*, shmsize, cachefrom,
// squash, platform) are accepted and ignored.
func buildOptions(r *http.Request) (apiserver.BuildOptions, bool, error) {
	q := r.URL.Query()
	opts := apiserver.BuildOptions{Tags: q["t"], Dockerfile: q.Get("dockerfile"), Target: q.Get("target"),
		NoCache: boolQuery(r, "nocache"), Pull: boolQuery(r, "pull")}
	if q.Get("remote") != "" {
		return opts, false, errdefs.NotImplemented("skiff builds from a context tar in the request body, not from remote %s: clone it and build the directory", q.Get("remote"))
	}
	if v := q.Get("version"); v == string(build.BuilderBuildKit) {
		return opts, false, errdefs.NotImplemented("skiff serves the classic builder's /build, not BuildKit: run docker build with DOCKER_BUILDKIT=0")
	}
	var err error
	if opts.BuildArgs, err = jsonMapParam(q.Get("buildargs"), "buildargs"); err != nil {
		return opts, false, err
	}
	if opts.Labels, err = jsonMapParam(q.Get("labels"), "labels"); err != nil {
		return opts, false, err
	}
	switch nm := q.Get("networkmode"); nm {
	case "", "default", "bridge":
		opts.Network = "default"
	case "none":
		opts.Network = "none"
	default:
		return opts, false, errdefs.Invalid("build network mode %q is not served: RUN steps take the default network or none", nm)
	}
	for _, t := range opts.Tags {
		if t == "" {
			return opts, false, errdefs.Invalid("build tag t= is empty: give -t NAME[:TAG]")
		}
	}
	return opts, boolQuery(r, "q"), nil
}

// jsonMapParam decodes a JSON object parameter of string (or null) values;
// a null value is dropped, as docker drops a build arg given without a
// value that is not in its environment.
func jsonMapParam(raw, param string) (map[string]string, error) {
	if raw == "" {
		return nil, nil
	}
	var m map[string]*string
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, errdefs.Invalid("query parameter %s must be a JSON object of strings: %v", param, err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out, nil
}

// build is POST /build: the build context is the tar body (gzip allowed);
// progress comes as the classic builder's JSON stream, "Step N/M : ..."
// lines, then {"aux":{"ID":...}} and "Successfully built/tagged", or an
// errorDetail.
func (a *imageAPI) build(w http.ResponseWriter, r *http.Request) error {
	opts, quiet, err := buildOptions(r)
	if err != nil {
		return err
	}
	body, err := contextBody(http.MaxBytesReader(w, r.Body, a.maxUpload))
	if err != nil {
		return err
	}
	st := newJSONStream(w)
	if !quiet {
		opts.Events = func(ev api.BuildEvent) {
			if line, ok := classicLine(ev); ok {
				st.line(line)
			}
		}
	}
	res, err := a.images.Build(r.Context(), body, opts, lineSink(func(l string) {
		if !quiet {
			st.line(l + "\n")
		}
	}))
	if err != nil {
		st.fail(err)
		return nil
	}
	aux, _ := json.Marshal(build.Result{ID: res.ID})
	raw := json.RawMessage(aux)
	st.send(jsonstream.Message{Aux: &raw})
	if quiet {
		st.line(res.ID + "\n")
		return nil
	}
	st.line("Successfully built " + shortID(strings.TrimPrefix(res.ID, "sha256:")) + "\n")
	for _, t := range opts.Tags {
		st.line("Successfully tagged " + t + "\n")
	}
	return nil
}

// classicLine is the classic builder's text for a build event.
func classicLine(ev api.BuildEvent) (string, bool) {
	prefix := ""
	if ev.Multi && ev.Stage != "" {
		prefix = "[" + ev.Stage + "] "
	}
	switch ev.Kind {
	case api.BuildStepStarted:
		return fmt.Sprintf("%sStep %d/%d : %s\n", prefix, ev.Index, ev.Total, ev.Text), true
	case api.BuildStepDone:
		if ev.Cached {
			return prefix + " ---> Using cache\n", true
		}
		return "", false
	case api.BuildWarning:
		return "[WARNING]: " + ev.Text + "\n", true
	}
	return ev.Text + "\n", ev.Text != ""
}

// contextBody returns the build context tar of body, decompressing a
// gzipped one (docker build --compress).
func contextBody(body io.Reader) (io.Reader, error) {
	br := bufio.NewReader(body)
	magic, _ := br.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, errdefs.Invalid("the build context is not a valid gzip stream: %v", err)
	}
	return zr, nil
}

// lineSink calls fn for each complete line written to it.
type lineSink func(string)

func (f lineSink) Write(p []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l = strings.TrimRight(l, "\n"); l != "" {
			f(l)
		}
	}
	return len(p), nil
}

// pruneBuildCache is POST /build/prune: the build cache entries not used
// for the "until" filter's duration, or all of them.
func (a *imageAPI) pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	bc, ok := a.images.(apiserver.BuildCache)
	if !ok {
		return errdefs.NotImplemented("this daemon has no build cache")
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("until", "unused-for"); err != nil {
		return err
	}
	var olderThan time.Duration
	for _, key := range []string{"until", "unused-for"} {
		for _, v := range f[key] {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errdefs.Invalid("filter %s=%q is not a duration such as 24h or 90m", key, v)
			}
			olderThan = d
		}
	}
	res, err := bc.PruneBuildCache(r.Context(), olderThan)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{}, SpaceReclaimed: uint64(max(res.BytesFreed, 0))})
}
