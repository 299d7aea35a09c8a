package gitops

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/app"
	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/cli/compose"
)

// Credentials are what a fetch authenticates with.
type Credentials struct {
	// Token is sent as the password of HTTP basic auth (user "git"), as
	// GitHub, GitLab and Gitea accept a personal or deploy token.
	Token string
	// TokenSecret names the skiff secret Token came from, for messages.
	TokenSecret string
	// SSHKeyFile and KnownHostsFile are for ssh URLs.
	SSHKeyFile, KnownHostsFile string
	// CABundle is PEM certificates trusted for https:// besides the
	// system's.
	CABundle []byte
}

// auth makes the go-git auth method for url.
func (c Credentials) auth(url string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, errdefs.Invalid("git URL %q: %v", url, err)
	}
	switch ep.Protocol {
	case "http", "https":
		if c.Token != "" {
			return &githttp.BasicAuth{Username: "git", Password: c.Token}, nil
		}
	case "ssh":
		return c.sshAuth(url, ep)
	}
	return nil, nil
}

// sshAuth is the key of SSHKeyFile, with the server's host key checked
// against KnownHostsFile: only the key types listed there for the host are
// asked for, and a mismatch or an unknown host fails with what to do.
func (c Credentials) sshAuth(url string, ep *transport.Endpoint) (transport.AuthMethod, error) {
	if c.SSHKeyFile == "" {
		return nil, errdefs.Invalid("git URL %s is ssh: give the source a private key with --ssh-key FILE", url)
	}
	user := ep.User
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, c.SSHKeyFile, "")
	if err != nil {
		return nil, errdefs.Invalid("read the ssh key %s: %v", c.SSHKeyFile, err)
	}
	kh := c.KnownHostsFile
	if kh == "" {
		home, _ := os.UserHomeDir()
		kh = filepath.Join(home, ".ssh", "known_hosts")
	}
	db, err := gitssh.NewKnownHostsDb(kh)
	if err != nil {
		return nil, errdefs.Invalid("read the known hosts file %s: %v (give one with --known-hosts FILE)", kh, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	check := db.HostKeyCallback()
	keys.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return errdefs.Unauthorized("host key mismatch: the %s key of %s is not the one the known hosts file %s lists for it (a changed server key, or another machine answering): nothing was fetched; if the server's key did change, replace its line in that file",
				key.Type(), hostPort, kh)
		case errors.As(err, &ke):
			return errdefs.Unauthorized("unknown host: %s is not in the known hosts file %s: add its key (ssh-keyscan -p %d %s >> %s), after checking it", hostPort, kh, port, ep.Host, kh)
		}
		return err
	}
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostPort)
	return keys, nil
}

// transportError words a failed list or fetch of url: refused
// credentials and an untrusted certificate say what to fix.
func (c Credentials) transportError(what, url string, err error) error {
	var hint string
	var ue x509.UnknownAuthorityError
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired) && c.Token != "":
		hint = fmt.Sprintf("the server refused the token (HTTP 401): check the token in the secret %s given with --token-secret", c.TokenSecret)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		hint = "the server asks for credentials (HTTP 401): give the source a token with --token-secret SECRET"
	case errors.Is(err, transport.ErrAuthorizationFailed):
		hint = "the server refused access (HTTP 403): give the token read access to the repository"
	case errors.As(err, &ue) || strings.Contains(err.Error(), "certificate signed by unknown authority"):
		hint = "the server's certificate is not signed by a trusted authority: give the source its CA with --ca-file FILE"
	case errors.Is(err, errdefs.ErrUnauthorized):
		return fmt.Errorf("%s %s: %w", what, url, err)
	}
	if hint != "" {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("%s %s: %s: %w", what, url, hint, err))
	}
	return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("%s %s: %w", what, url, err))
}

// Target is the commit a source's ref points at now.
type Target struct {
	// Ref is the full ref name (refs/heads/main, refs/tags/v1.2.0).
	Ref plumbing.ReferenceName
	// Hash is what the ref names: a commit, or an annotated tag.
	Hash plumbing.Hash
}

// Resolve lists the refs of the source's repository and picks the one
// its spec follows: the branch, the tag, the highest tag in the semver
// range, or the default branch.
func Resolve(ctx context.Context, spec api.SourceSpec, cred Credentials) (Target, error) {
	auth, err := cred.auth(spec.Git)
	if err != nil {
		return Target{}, err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{spec.Git}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth, CABundle: cred.CABundle})
	if err != nil {
		return Target{}, cred.transportError("list the refs of", spec.Git, err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	pick := func(n plumbing.ReferenceName, what string) (Target, error) {
		r, ok := byName[n]
		if !ok {
			return Target{}, errdefs.NotFound("%s has no %s", spec.Git, what)
		}
		return Target{Ref: n, Hash: r.Hash()}, nil
	}
	switch {
	case spec.Branch != "":
		return pick(plumbing.NewBranchReferenceName(spec.Branch), "branch "+spec.Branch)
	case spec.Tag != "":
		return pick(plumbing.NewTagReferenceName(spec.Tag), "tag "+spec.Tag)
	case spec.Semver != "":
		return pickSemver(spec, refs)
	}
	head, ok := byName[plumbing.HEAD]
	if !ok {
		return Target{}, errdefs.NotFound("%s has no HEAD: give the source a --branch", spec.Git)
	}
	if head.Type() == plumbing.SymbolicReference {
		return pick(head.Target(), "default branch "+head.Target().Short())
	}
	// No symref advertised: the branch whose head HEAD is.
	var names []string
	for _, r := range refs {
		if r.Name().IsBranch() && r.Hash() == head.Hash() {
			names = append(names, string(r.Name()))
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return Target{}, errdefs.NotFound("%s: HEAD is on no branch: give the source a --branch", spec.Git)
	}
	return Target{Ref: plumbing.ReferenceName(names[0]), Hash: head.Hash()}, nil
}

// pickSemver returns the highest tag matching the spec's range.
func pickSemver(spec api.SourceSpec, refs []*plumbing.Reference) (Target, error) {
	c, err := semver.NewConstraint(spec.Semver)
	if err != nil {
		return Target{}, errdefs.Invalid("--semver %q is not a version range: %v", spec.Semver, err)
	}
	var best *semver.Version
	var target Target
	for _, r := range refs {
		if !r.Name().IsTag() {
			continue
		}
		v, err := semver.NewVersion(r.Name().Short())
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, target = v, Target{Ref: r.Name(), Hash: r.Hash()}
		}
	}
	if best == nil {
		return Target{}, errdefs.NotFound("%s has no tag matching the version range %q", spec.Git, spec.Semver)
	}
	return target, nil
}

// Checkout is the content of one commit.
type Checkout struct {
	Commit *object.Commit
}

// Fetch fetches the commit t names, and only it (a shallow fetch into
// memory).
func Fetch(ctx context.Context, spec api.SourceSpec, cred Credentials, t Target) (Checkout, error) {
	auth, err := cred.auth(spec.Git)
	if err != nil {
		return Checkout{}, err
	}
	opts := &git.CloneOptions{URL: spec.Git, Auth: auth, CABundle: cred.CABundle, ReferenceName: t.Ref, SingleBranch: true, Depth: 1, Tags: git.NoTags}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil && strings.Contains(err.Error(), "shallow") {
		// A server without shallow fetches: the whole history of the ref.
		opts.Depth = 0
		repo, err = git.CloneContext(ctx, memory.NewStorage(), nil, opts)
	}
	if err != nil {
		return Checkout{}, cred.transportError("fetch "+t.Ref.Short()+" from", spec.Git, err)
	}
	head, err := repo.Head()
	if err != nil {
		return Checkout{}, fmt.Errorf("fetch %s from %s: %w", t.Ref.Short(), spec.Git, err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		return Checkout{}, fmt.Errorf("read commit %s: %w", head.Hash(), err)
	}
	return Checkout{Commit: c}, nil
}

// LoadTree loads every App document (.yaml, .yml, .json) under dir in the
// commit, in path order, as skiff apply -f does: any bad file fails the
// whole load (ErrInvalid) naming each problem's file, line and field.
func LoadTree(c Checkout, dir string) ([]api.App, error) {
	m, err := LoadCommit(c, dir)
	return m.Apps, err
}

// Manifests are what a commit declares under a source's path.
type Manifests struct {
	// Apps are the App documents' Apps, then the compose projects', all
	// checked against the commit's policy files.
	Apps []api.App
	// Secrets are the Secret documents (kind: Secret, .yaml or .yml), still
	// encrypted, in path order.
	Secrets []SecretFile
}

// LoadCommit loads what the commit declares under dir, as LoadTree does:
// the App documents; the compose projects (compose.yaml or
// docker-compose.yml, with an override beside it), whose services marked
// x-skiff: {app: true} become Apps; and the policy files (policy.yaml or
// NAME.policy.yaml), whose app rules every App must pass. Secret documents
// are set apart, undecrypted. Any problem fails the whole load.
func LoadCommit(c Checkout, dir string) (Manifests, error) {
	tree, err := c.Commit.Tree()
	if err != nil {
		return Manifests{}, fmt.Errorf("read the tree of %s: %w", c.Commit.Hash, err)
	}
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir != "" {
		if tree, err = tree.Tree(dir); err != nil {
			if errors.Is(err, object.ErrDirectoryNotFound) {
				return Manifests{}, errdefs.Invalid("commit %s has no directory %s: fix the source's --path", c.Commit.Hash.String()[:12], dir)
			}
			return Manifests{}, err
		}
	}
	var files, composes, policies []app.File
	var secrets []SecretFile
	err = tree.Files().ForEach(func(f *object.File) error {
		switch strings.ToLower(path.Ext(f.Name)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		b, err := readBlob(f)
		if err != nil {
			return err
		}
		name := path.Join(dir, f.Name)
		if len(b) > maxFileSize {
			return errdefs.Invalid("%s is larger than %d bytes: nothing was applied", name, maxFileSize)
		}
		switch {
		case isComposeFile(name):
			composes = append(composes, app.File{Name: name, Data: b})
		case isPolicyFile(name):
			policies = append(policies, app.File{Name: name, Data: b})
		case isSecret(name, b):
			secrets = append(secrets, SecretFile{Name: name, Data: b})
		default:
			files = append(files, app.File{Name: name, Data: b})
		}
		return nil
	})
	if err != nil {
		return Manifests{}, err
	}
	for _, l := range [][]app.File{files, composes, policies} {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	sort.Slice(secrets, func(i, j int) bool { return secrets[i].Name < secrets[j].Name })
	m := Manifests{Secrets: secrets}
	if len(files) > 0 {
		if m.Apps, err = app.LoadFiles(files); err != nil {
			return m, err
		}
	}
	return m, m.addComposeAndPolicies(composes, policies)
}

// addComposeAndPolicies adds the compose projects' Apps to m (an App
// declared twice fails) and checks every App against the policy files.
func (m *Manifests) addComposeAndPolicies(composes, policies []app.File) error {
	pols, err := loadPolicies(policies)
	if err != nil {
		return err
	}
	capps, err := composeApps(composes)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range m.Apps {
		seen[a.Metadata.Name] = true
	}
	for _, a := range capps {
		if seen[a.Metadata.Name] {
			return errdefs.Invalid("app %s is declared twice, the second time by service %s of compose project %s: rename one: nothing was applied",
				a.Metadata.Name, a.Metadata.Labels[compose.LabelService], a.Metadata.Labels[compose.LabelProject])
		}
		seen[a.Metadata.Name] = true
	}
	m.Apps = append(m.Apps, capps...)
	return checkPolicies(pols, m.Apps)
}

// readBlob reads a file of a commit, at most maxFileSize+1 bytes.
func readBlob(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxFileSize+1))
}

// maxFileSize bounds one manifest file.
const maxFileSize = 4 << 20
