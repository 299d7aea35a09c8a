package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/client"
)

// eventImages is an image service whose builds report fixed events.
type eventImages struct {
	Images
	events []api.BuildEvent
	labels map[string]string
}

func (f *eventImages) Build(ctx context.Context, r io.Reader, opts BuildOptions, progress io.Writer) (api.ImageBuildResponse, error) {
	io.Copy(io.Discard, r)
	f.labels = opts.Labels
	for _, ev := range f.events {
		opts.Events(ev)
	}
	io.WriteString(progress, "a line of a service without events\n")
	return api.ImageBuildResponse{ID: "sha256:1", Tags: opts.Tags}, nil
}

var testBuildEvents = []api.BuildEvent{
	{Kind: api.BuildStepStarted, Step: 1, Stage: "build", Index: 1, Total: 2, Text: "FROM scratch AS build", Multi: true},
	{Kind: api.BuildStepOutput, Step: 1, Stage: "build", Text: "hello", Multi: true},
	{Kind: api.BuildStepDone, Step: 1, Stage: "build", Duration: 1500 * time.Millisecond, Multi: true},
	{Kind: api.BuildWarning, Text: "careful"},
}

// TestBuildEventsOnTheWire checks each build event travels as an
// "event" with its old "stream" line beside it (what earlier clients
// print), that the Go client hands the events back whole (and a bare
// line as a message), and that labels reach the service.
func TestBuildEventsOnTheWire(t *testing.T) {
	imgs := &eventImages{events: testBuildEvents}
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(New(Services{Images: imgs}, slog.New(slog.DiscardHandler)))
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Post("http://skiff/v1/images/build?t=x", "application/x-tar", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if s, ok := m["stream"]; ok {
			var line string
			json.Unmarshal(s, &line)
			streams = append(streams, line)
		}
	}
	resp.Body.Close()
	want := []string{"[build] STEP 1/2: FROM scratch AS build", "hello", "WARNING: careful", "a line of a service without events"}
	if !reflect.DeepEqual(streams, want) {
		t.Errorf("stream lines %q, want %q", streams, want)
	}

	var got []api.BuildEvent
	var lines []string
	res, err := client.New(sock).BuildImage(context.Background(), strings.NewReader(""), client.BuildOptions{
		Tags:     []string{"x"},
		Labels:   map[string]string{"team": "web", "note": "a=b"},
		Events:   func(ev api.BuildEvent) { got = append(got, ev) },
		Progress: func(line string) { lines = append(lines, line) },
	})
	if err != nil || res.ID != "sha256:1" {
		t.Fatalf("build: %+v, %v", res, err)
	}
	wantEvents := append(slices.Clone(testBuildEvents), api.BuildEvent{Kind: api.BuildMessage, Text: "a line of a service without events"})
	if !reflect.DeepEqual(got, wantEvents) || len(lines) != 0 {
		t.Errorf("events %+v (and lines %q), want %+v", got, lines, wantEvents)
	}
	if !reflect.DeepEqual(imgs.labels, map[string]string{"team": "web", "note": "a=b"}) {
		t.Errorf("the service got labels %v", imgs.labels)
	}
}
