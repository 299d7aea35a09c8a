package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run the command (ECHOSERVER_RUN_MAIN=1).
func TestMain(m *testing.M) {
	if os.Getenv("ECHOSERVER_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestHandler(t *testing.T) {
	h := newHandler("box")
	tests := []struct {
		name    string
		method  string
		target  string
		body    string
		headers map[string]string
		code    int
		want    request
	}{
		{
			name: "get", method: "GET", target: "/a/b?x=1&y=2", headers: map[string]string{"X-Test": "yes"}, code: 200,
			want: request{Hostname: "box", Method: "GET", Path: "/a/b", Query: "x=1&y=2", Proto: "HTTP/1.1", Host: "example.com", Headers: map[string][]string{"X-Test": {"yes"}}},
		},
		{
			name: "post with body", method: "POST", target: "/submit", body: "payload", code: 200,
			want: request{Hostname: "box", Method: "POST", Path: "/submit", Proto: "HTTP/1.1", Host: "example.com", Body: "payload"},
		},
		{
			name: "chosen status", method: "GET", target: "/?status=503", code: 503,
			want: request{Hostname: "box", Method: "GET", Path: "/", Query: "status=503", Proto: "HTTP/1.1", Host: "example.com"},
		},
		{name: "bad status", method: "GET", target: "/?status=42", code: 400},
		{name: "bad sleep", method: "GET", target: "/?sleep=1h", code: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 400 {
				return
			}
			var got request
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if got.RemoteAddr == "" {
				t.Error("no remoteAddr")
			}
			got.RemoteAddr = ""
			if tt.want.Headers == nil {
				tt.want.Headers = map[string][]string{}
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestTCPEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveTCP(ctx, ln) }()

	conns := make([]net.Conn, 3)
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		msg := strings.Repeat(string(rune('a'+i)), 100000)
		go c.Write([]byte(msg))
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("conn %d echoed %d bytes, %v", i, len(got), err)
		}
	}
	// Stopping closes the listener and the open connections.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveTCP did not return within 5s of the stop")
	}
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after stop: %v, want EOF", err)
	}
}

// TestCommand runs the command on loopback ports, talks to both
// listeners and stops it with SIGTERM.
func TestCommand(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-http", "127.0.0.1:0", "-tcp", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "ECHOSERVER_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(stdout)
	addrs := map[string]string{}
	for range 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(l) // listening <proto> on <addr>
		if len(f) != 4 {
			t.Fatalf("line %q", l)
		}
		addrs[f[1]] = f[3]
	}
	resp, err := http.Get("http://" + addrs["http"] + "/hi")
	if err != nil {
		t.Fatal(err)
	}
	var got request
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	host, _ := os.Hostname()
	if err != nil || got.Path != "/hi" || got.Hostname != host {
		t.Errorf("http echo %+v, %v", got, err)
	}
	c, err := net.Dial("tcp", addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); l != "ping\n" {
		t.Errorf("tcp echo %q, %v", l, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil || !strings.Contains(string(rest), "stopped") {
		t.Errorf("after SIGTERM: %v, output %q", err, rest)
	}
}
