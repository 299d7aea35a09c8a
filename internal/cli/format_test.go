package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api"
)

var created = time.Now().Add(-3 * time.Hour).Round(time.Second)

func listed() []api.Container {
	return []api.Container{
		{
			ID: strings.Repeat("ab", 32), Name: "web", Created: created, ImageRef: "localhost/hello:latest",
			Config:          api.ContainerConfig{Image: "hello", Resources: api.Resources{MemoryBytes: 64 << 20}},
			Process:         []string{"/hello", "-listen", ":8080"},
			State:           api.ContainerState{Status: api.StatusRunning, Pid: 4242, StartedAt: created, RestartCount: 2},
			NetworkSettings: &api.NetworkSettings{IP: "10.89.0.5"},
		},
		{
			ID: strings.Repeat("cd", 32), Name: "job", Created: created, ImageRef: "localhost/busybox:latest",
			Config:  api.ContainerConfig{Image: "busybox"},
			Process: []string{"sh", "-c", "exit 3"},
			State:   api.ContainerState{Status: api.StatusExited, ExitCode: 3, StartedAt: created, FinishedAt: created.Add(time.Second)},
		},
	}
}

func printed(t *testing.T, output string, quiet bool) string {
	t.Helper()
	var b bytes.Buffer
	if err := containerTable.print(&b, output, quiet, listed()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestListFormats(t *testing.T) {
	tests := []struct {
		name, output string
		quiet        bool
		want         string
	}{
		{"table", outTable, false, "" +
			"CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS                   PORTS   NAMES\n" +
			"abababababab   hello     \"/hello -listen :8080\"   3 hours ago   Up 3 hours                       web\n" +
			"cdcdcdcdcdcd   busybox   \"sh -c \\\"exit 3\\\"\"       3 hours ago   Exited (3) 3 hours ago           job\n"},
		{"wide", outWide, false, "" +
			"CONTAINER ID   IMAGE     COMMAND                CREATED       STATUS                   PORTS   IP          PID    RESTARTS   LIMITS       NAMES\n" +
			"abababababab   hello     /hello -listen :8080   3 hours ago   Up 3 hours                       10.89.0.5   4242   2          mem=64MiB    web\n" +
			"cdcdcdcdcdcd   busybox   sh -c \"exit 3\"         3 hours ago   Exited (3) 3 hours ago                              0          -            job\n"},
		{"quiet", outTable, true, "abababababab\ncdcdcdcdcdcd\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := printed(t, tc.output, tc.quiet); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestStructuredFormatsRoundTrip(t *testing.T) {
	for _, output := range []string{outJSON, outYAML} {
		t.Run(output, func(t *testing.T) {
			text := printed(t, output, false)
			var got []api.Container
			var err error
			if output == outJSON {
				err = json.Unmarshal([]byte(text), &got)
			} else {
				err = yaml.Unmarshal([]byte(text), &got)
			}
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", output, err, text)
			}
			want := listed()
			if len(got) != len(want) {
				t.Fatalf("%d items, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.ID != w.ID || g.Name != w.Name || g.State.Status != w.State.Status || g.State.ExitCode != w.State.ExitCode ||
					g.State.Pid != w.State.Pid || g.Config.Resources.MemoryBytes != w.Config.Resources.MemoryBytes || !g.Created.Equal(w.Created) {
					t.Fatalf("item %d came back as %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestUnknownOutputFormat(t *testing.T) {
	err := checkOutput("xml", outWide, outJSON, outYAML)
	if err == nil || !strings.Contains(err.Error(), `unknown output format "xml": use wide, json, yaml`) {
		t.Fatalf("got %v", err)
	}
}
