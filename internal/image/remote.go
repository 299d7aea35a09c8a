package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// RemoteOptions configure Pull and Push.
type RemoteOptions struct {
	// Insecure allows plain HTTP and unverified TLS to the registry.
	// Loopback and private-network registries may always use plain HTTP.
	Insecure bool
	// Auth authenticates to the registry; nil means the credentials in
	// ~/.docker/config.json, if any, else anonymous.
	Auth authn.Authenticator
	// Platform picks the image of a multi-platform index, as
	// "os/arch[/variant]"; the default is linux/<GOARCH>.
	Platform string

	// transport replaces the HTTP transport (tests inject failures).
	transport http.RoundTripper
}

// retryBackoff retries transient registry errors briefly: a pull that
// cannot reach its registry fails within about a second.
var retryBackoff = remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}

// platform returns the platform to pull: opts.Platform or linux/<GOARCH>.
func (o RemoteOptions) platform() (v1.Platform, error) {
	if o.Platform == "" {
		return hostPlatform(), nil
	}
	pp, err := v1.ParsePlatform(o.Platform)
	if err != nil || pp.OS == "" || pp.Architecture == "" {
		return v1.Platform{}, errdefs.Invalid("invalid platform %q: use os/arch[/variant], e.g. linux/amd64", o.Platform)
	}
	return *pp, nil
}

func (o RemoteOptions) options(ctx context.Context) ([]remote.Option, []name.Option, error) {
	p, err := o.platform()
	if err != nil {
		return nil, nil, err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(p),
		remote.WithUserAgent("skiff"),
		remote.WithRetryBackoff(retryBackoff),
	}
	if o.Auth != nil {
		ropts = append(ropts, remote.WithAuth(o.Auth))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if o.transport != nil {
		ropts = append(ropts, remote.WithTransport(o.transport))
	}
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for an insecure registry
		ropts = append(ropts, remote.WithTransport(tr))
	}
	return ropts, nopts, nil
}

// remoteError classifies an error talking to a registry.
func remoteError(op, ref string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, ref, err)
	}
	if errdefs.Category(err) != nil {
		return fmt.Errorf("%s %s: %w", op, ref, err)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return errdefs.NotFound("%s %s: the registry has no such image: %v", op, ref, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return errdefs.WithCategory(errdefs.ErrUnauthorized, fmt.Errorf("%s %s: access denied: log in to the registry or check the credentials: %v", op, ref, err))
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return errdefs.NotFound("%s %s: the registry has no such image: %v", op, ref, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.WithCategory(errdefs.ErrUnauthorized, fmt.Errorf("%s %s: access denied: log in to the registry or check the credentials: %v", op, ref, err))
		}
	}
	return errdefs.Unavailable("%s %s: %v: check that the registry is reachable from this machine", op, ref, err)
}

// Pull fetches ref from its registry (short names from docker.io) and
// stores it under its fully qualified reference; a digest reference is
// stored as NAME@DIGEST. For a multi-platform index only the image for
// opts.Platform is fetched. Blobs are written as they arrive: an
// interrupted pull leaves only unreferenced blobs, which a later pull
// reuses and Prune removes.
func (s *Store) Pull(ctx context.Context, ref string, opts RemoteOptions) (api.Image, error) {
	if _, exact, isID := parseID(ref); isID && exact {
		return api.Image{}, errdefs.Invalid("cannot pull %q: it is an image ID; pull a reference such as registry/name:tag", ref)
	}
	parsed, err := ParseReference(ref)
	if err != nil {
		return api.Image{}, err
	}
	q := parsed.Remote()
	if q.Digest != "" {
		q.Tag = ""
	}
	ropts, nopts, err := opts.options(ctx)
	if err != nil {
		return api.Image{}, err
	}
	nref, err := name.ParseReference(q.String(), nopts...)
	if err != nil {
		return api.Image{}, errdefs.Invalid("invalid image reference %q: %v", ref, err)
	}
	img, err := fetch(nref, opts, ropts)
	if err != nil {
		return api.Image{}, remoteError("pull", q.String(), err)
	}
	pins := s.pin()
	defer pins.release()
	w := &written{}
	desc, _, err := s.writeImage(ctx, img, pins, w, nil)
	if err != nil {
		return api.Image{}, remoteError("pull", q.String(), err)
	}
	out, err := s.commit(ctx, []addition{{desc: desc, refs: []string{q.String()}}}, w, pins)
	if err != nil {
		return api.Image{}, err
	}
	return out[0], nil
}

// fetch gets the image nref names; for an index, the child for the
// requested platform.
func fetch(nref name.Reference, opts RemoteOptions, ropts []remote.Option) (v1.Image, error) {
	desc, err := remote.Get(nref, ropts...)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		return desc.Image()
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	p, err := opts.platform()
	if err != nil {
		return nil, err
	}
	child, err := selectPlatform(im.Manifests, p)
	if err != nil {
		return nil, err
	}
	return idx.Image(child.Digest)
}

// Push uploads the image ref names to the registry its fully qualified
// reference names. An image named only by ID cannot be pushed: tag it
// first.
func (s *Store) Push(ctx context.Context, ref string, opts RemoteOptions) error {
	m, img, pins, err := s.pushable(ref)
	if err != nil {
		return err
	}
	defer pins.release()
	ropts, nopts, err := opts.options(ctx)
	if err != nil {
		return err
	}
	nref, err := name.ParseReference(m.ref, nopts...)
	if err != nil {
		return errdefs.Invalid("invalid image reference %q: %v", m.ref, err)
	}
	if err := remote.Write(nref, img, ropts...); err != nil {
		return remoteError("push", m.ref, err)
	}
	return nil
}

// pushable looks up the image Push sends and pins its blobs, under the
// index lock so that a Remove or Prune cannot delete them in between.
func (s *Store) pushable(ref string) (match, v1.Image, *pinSet, error) {
	entries, unlock, err := s.readIndex()
	if err != nil {
		return match{}, nil, nil, err
	}
	defer unlock()
	m, err := s.lookup(entries, ref)
	if err != nil {
		return match{}, nil, nil, err
	}
	if m.ref == "" {
		return match{}, nil, nil, errdefs.Invalid("cannot push %q: it names an image by ID; tag it with a registry name first (skiff image tag %s REGISTRY/NAME:TAG)", ref, ref)
	}
	img, err := s.imageOf(m)
	if err != nil {
		return match{}, nil, nil, err
	}
	return m, img, s.pinImage(m, false), nil
}
