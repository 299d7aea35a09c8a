package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

// TestMain runs the command itself when asked to, so tests can start it
// as a real process and send it signals.
func TestMain(m *testing.M) {
	if os.Getenv("HELLO_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestHandler(t *testing.T) {
	h := newHandler("box", "7")
	tests := []struct {
		name     string
		method   string
		target   string
		code     int
		body     string
		minDelay time.Duration
	}{
		{"hello", "GET", "/", 200, "hello from skiff (box), version 7\n", 0},
		{"health", "GET", "/healthz", 200, "ok\n", 0},
		{"head", "HEAD", "/", 200, "", 0},
		{"sleep", "GET", "/?sleep=20ms", 200, "hello from skiff (box), version 7\n", 20 * time.Millisecond},
		{"bad sleep", "GET", "/?sleep=forever", 400, "bad sleep", 0},
		{"sleep too long", "GET", "/?sleep=1h", 400, "bad sleep", 0},
		{"unknown path", "GET", "/nope", 404, "404 page not found\n", 0},
		{"wrong method", "POST", "/", 405, "Method Not Allowed\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.code || !strings.HasPrefix(rec.Body.String(), tt.body) {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.target, rec.Code, rec.Body, tt.code, tt.body)
			}
			if el := time.Since(begin); el < tt.minDelay {
				t.Errorf("answered after %v, want at least %v", el, tt.minDelay)
			}
		})
	}
}

func TestCommandModes(t *testing.T) {
	srv := httptest.NewServer(newHandler("box", "1"))
	defer srv.Close()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"exit code", []string{"-exit", "3"}, 3, "", ""},
		{"exit zero", []string{"-exit", "0"}, 0, "", ""},
		{"print", []string{"-print", "from hello"}, 0, "from hello\n", ""},
		{"print empty", []string{"-print", ""}, 0, "\n", ""},
		{"get", []string{"-get", srv.URL + "/healthz"}, 0, "ok\n", ""},
		{"get error status", []string{"-get", srv.URL + "/nope"}, 1, "404 page not found\n", "404 Not Found"},
		{"bad flag", []string{"-nope"}, 2, "", "flag provided but not defined"},
		{"stray argument", []string{"serve"}, 2, "", "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code || stdout.String() != tt.stdout || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d, %q, stderr with %q",
					tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestGetWaitsForServer checks that -get retries while the server is not
// listening yet.
func TestGetWaitsForServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return // the address was taken meanwhile: the test fails below
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		serve(ctx, ln, newHandler("late", "1"), time.Second)
	}()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-get", "http://" + addr + "/"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-get = %d: %s", code, stderr.String())
	}
	if got := stdout.String(); got != "hello from skiff (late), version 1\n" {
		t.Errorf("body %q", got)
	}
}

// TestGracefulStop starts the real command, sends it SIGTERM while a slow
// request is in flight, and checks the request completes, new connections
// are refused, and the exit code is 0.
func TestGracefulStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HELLO_RUN_MAIN=1", "HOST=127.0.0.1", "PORT="+port, "VERSION=9")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on 127.0.0.1:"+port) {
		t.Fatalf("first line %q, %v", line, err)
	}

	url := "http://127.0.0.1:" + port + "/"
	// One kept-alive connection: the slow request goes on a connection
	// the server has accepted already.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	if code, body := getBody(t, client, url+"healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz = %d %q", code, body)
	}
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := client.Get(url + "?sleep=500ms")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	time.Sleep(100 * time.Millisecond) // the slow request is in flight
	signaled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes at once: new connections are refused.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 2s after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := <-slow
	if r.err != nil || r.body != "hello from skiff ("+hostname(t)+"), version 9\n" {
		t.Errorf("request in flight at SIGTERM: %q, %v", r.body, r.err)
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if el := time.Since(signaled); el < 300*time.Millisecond {
		t.Errorf("exited %v after SIGTERM, before the request in flight was done", el)
	}
	if !strings.Contains(string(rest), "stopped") {
		t.Errorf("output after SIGTERM %q", rest)
	}
}

func getBody(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
