package image

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseReference(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       Reference
		local      string
		remote     string
		candidates []string
		errPart    string
	}{
		{
			name: "short name", in: "hello",
			want:       Reference{Path: "hello"},
			local:      "localhost/hello:latest",
			remote:     "docker.io/library/hello:latest",
			candidates: []string{"localhost/hello:latest", "docker.io/library/hello:latest"},
		},
		{
			name: "short name with tag", in: "hello:1.0",
			want:       Reference{Path: "hello", Tag: "1.0"},
			local:      "localhost/hello:1.0",
			remote:     "docker.io/library/hello:1.0",
			candidates: []string{"localhost/hello:1.0", "docker.io/library/hello:1.0"},
		},
		{
			name: "two components without registry", in: "team/app:v2",
			want:       Reference{Path: "team/app", Tag: "v2"},
			local:      "localhost/team/app:v2",
			remote:     "docker.io/team/app:v2",
			candidates: []string{"localhost/team/app:v2", "docker.io/team/app:v2"},
		},
		{
			name: "localhost registry", in: "localhost/hello",
			want:       Reference{Domain: "localhost", Path: "hello"},
			local:      "localhost/hello:latest",
			remote:     "localhost/hello:latest",
			candidates: []string{"localhost/hello:latest"},
		},
		{
			name: "registry with port", in: "127.0.0.1:5000/team/x:2",
			want:       Reference{Domain: "127.0.0.1:5000", Path: "team/x", Tag: "2"},
			local:      "127.0.0.1:5000/team/x:2",
			remote:     "127.0.0.1:5000/team/x:2",
			candidates: []string{"127.0.0.1:5000/team/x:2"},
		},
		{
			name: "localhost with port and no tag", in: "localhost:5000/x",
			want:   Reference{Domain: "localhost:5000", Path: "x"},
			local:  "localhost:5000/x:latest",
			remote: "localhost:5000/x:latest",
		},
		{
			name: "docker.io gets library", in: "docker.io/hello",
			want:   Reference{Domain: "docker.io", Path: "library/hello"},
			local:  "docker.io/library/hello:latest",
			remote: "docker.io/library/hello:latest",
		},
		{
			name: "index.docker.io normalises", in: "index.docker.io/library/hello:3",
			want:   Reference{Domain: "docker.io", Path: "library/hello", Tag: "3"},
			remote: "docker.io/library/hello:3",
		},
		{
			name: "digest", in: "localhost/hello@" + testDigest,
			want:       Reference{Domain: "localhost", Path: "hello", Digest: testDigest},
			local:      "localhost/hello@" + testDigest,
			candidates: []string{"localhost/hello@" + testDigest},
		},
		{
			name: "short name with digest", in: "hello@" + testDigest,
			want:       Reference{Path: "hello", Digest: testDigest},
			candidates: []string{"localhost/hello@" + testDigest, "docker.io/library/hello@" + testDigest},
		},
		{
			name: "tag and digest", in: "example.com/a/b:1@" + testDigest,
			want: Reference{Domain: "example.com", Path: "a/b", Tag: "1", Digest: testDigest},
		},
		{
			name: "separators", in: "example.com/a__b/c-d--e.f_g:T_1.x-y",
			want: Reference{Domain: "example.com", Path: "a__b/c-d--e.f_g", Tag: "T_1.x-y"},
		},
		{
			name: "ipv6 registry", in: "[::1]:5000/x:1",
			want: Reference{Domain: "[::1]:5000", Path: "x", Tag: "1"},
		},
		{name: "empty", in: "", errPart: "empty"},
		{name: "upper case path", in: "Hello", errPart: "must be lowercase"},
		{name: "upper case component after registry", in: "example.com/Team/x", errPart: "must be lowercase"},
		{name: "bad tag", in: "hello:-x", errPart: "tag \"-x\""},
		{name: "empty tag", in: "hello:", errPart: "tag \"\""},
		{name: "bad digest", in: "hello@sha256:abc", errPart: "digest"},
		{name: "unsupported digest algorithm", in: "hello@md5:" + strings.Repeat("a", 32), errPart: "digest"},
		{name: "double slash", in: "a//b", errPart: "empty component"},
		{name: "trailing slash", in: "example.com/a/", errPart: "empty component"},
		{name: "bad host", in: "exa_mple.com/a", errPart: "registry host"},
		{name: "only a tag", in: ":latest", errPart: "no repository name"},
		{name: "bad separator", in: "a..b", errPart: "path component"},
		{name: "64 hex is an ID", in: strings.Repeat("a", 64), errPart: "image ID"},
		{name: "too long", in: "example.com/" + strings.Repeat("a", 250), errPart: "limit is 255"},
		{name: "short name too long once qualified", in: strings.Repeat("a", 240), errPart: "limit is 255"},
		{name: "space", in: "hello world", errPart: "path component"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if tt.errPart != "" {
				if err == nil {
					t.Fatalf("ParseReference(%q) = %+v, want an error containing %q", tt.in, got, tt.errPart)
				}
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error %v is not ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.errPart) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Errorf("error %q should name the reference and contain %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseReference(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.local != "" && got.Local().String() != tt.local {
				t.Errorf("Local() = %q, want %q", got.Local(), tt.local)
			}
			if tt.remote != "" && got.Remote().String() != tt.remote {
				t.Errorf("Remote() = %q, want %q", got.Remote(), tt.remote)
			}
			if tt.candidates != nil {
				var cs []string
				for _, c := range got.Candidates() {
					cs = append(cs, c.String())
				}
				if strings.Join(cs, " ") != strings.Join(tt.candidates, " ") {
					t.Errorf("Candidates() = %q, want %q", cs, tt.candidates)
				}
			}
		})
	}
}

func TestParseID(t *testing.T) {
	full := strings.Repeat("ab", 32)
	tests := []struct {
		name      string
		in        string
		hex       string
		exact, ok bool
	}{
		{name: "full digest", in: "sha256:" + full, hex: full, exact: true, ok: true},
		{name: "digest prefix", in: "sha256:abcd", hex: "abcd", exact: true, ok: true},
		{name: "bare full", in: full, hex: full, exact: true, ok: true},
		{name: "bare prefix", in: "abcdef", hex: "abcdef", ok: true},
		{name: "too short", in: "abc"},
		{name: "digest too short", in: "sha256:abc"},
		{name: "not hex", in: "hello"},
		{name: "upper hex", in: "ABCD"},
		{name: "too long", in: full + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hex, exact, ok := parseID(tt.in)
			if hex != tt.hex || exact != tt.exact || ok != tt.ok {
				t.Errorf("parseID(%q) = %q, %v, %v; want %q, %v, %v", tt.in, hex, exact, ok, tt.hex, tt.exact, tt.ok)
			}
		})
	}
}

func TestRefName(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        string
	}{
		{name: "full reference", annotations: map[string]string{annotationRefName: "localhost/hello:latest"}, want: "localhost/hello:latest"},
		{name: "short name with tag", annotations: map[string]string{annotationRefName: "hello:1"}, want: "localhost/hello:1"},
		{name: "bare tag", annotations: map[string]string{annotationRefName: "latest"}, want: ""},
		{name: "containerd name wins", annotations: map[string]string{annotationRefName: "latest", annotationContainerdName: "docker.io/library/hello:latest"}, want: "docker.io/library/hello:latest"},
		{name: "invalid", annotations: map[string]string{annotationRefName: "Bad/Name:x"}, want: ""},
		{name: "none", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refName(tt.annotations); got != tt.want {
				t.Errorf("refName(%v) = %q, want %q", tt.annotations, got, tt.want)
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"hello", "hello:1.0", "localhost/hello:latest", "127.0.0.1:5000/team/x@" + testDigest,
		"docker.io/hello", "[::1]:5000/x:1", "a__b/c--d", "UPPER", "x:", "@", "a//b", ":tag",
		"example.com/a/b:1@" + testDigest, strings.Repeat("a", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ParseReference(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		if ref.Path == "" {
			t.Fatalf("ParseReference(%q) = %+v with an empty path", s, ref)
		}
		// The canonical form parses back to the same reference.
		again, err := ParseReference(ref.String())
		if err != nil {
			t.Fatalf("ParseReference(%q) = %q, which does not parse: %v", s, ref, err)
		}
		if again != ref {
			t.Fatalf("round trip of %q: %+v then %+v", s, ref, again)
		}
		// Qualified forms name a registry and still parse.
		for _, q := range append(ref.Candidates(), ref.Local(), ref.Remote()) {
			if q.Domain == "" || (q.Tag == "" && q.Digest == "") {
				t.Fatalf("qualified form %+v of %q lacks a registry or a tag", q, s)
			}
			if _, err := ParseReference(q.String()); err != nil {
				t.Fatalf("qualified form %q of %q does not parse: %v", q, s, err)
			}
		}
	})
}

func ExampleParseReference() {
	for _, s := range []string{"hello", "team/app:1.2", "127.0.0.1:5000/x@" + testDigest} {
		ref, err := ParseReference(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		var lookups []string
		for _, c := range ref.Candidates() {
			lookups = append(lookups, c.String())
		}
		fmt.Printf("%s: new tag %s, pull %s, lookups %s\n", s, ref.Local(), ref.Remote(), strings.Join(lookups, " then "))
	}
	_, err := ParseReference("Hello")
	fmt.Println(err)
	// Output:
	// hello: new tag localhost/hello:latest, pull docker.io/library/hello:latest, lookups localhost/hello:latest then docker.io/library/hello:latest
	// team/app:1.2: new tag localhost/team/app:1.2, pull docker.io/team/app:1.2, lookups localhost/team/app:1.2 then docker.io/team/app:1.2
	// 127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef: new tag 127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, pull 127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, lookups 127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	// invalid image reference "Hello": repository name must be lowercase
}
