package daemon

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/api/types/registry"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/image"
)

// PullAuth pulls with the credentials a Docker client sent.
func (s *imageService) PullAuth(ctx context.Context, req api.ImagePullRequest, ac registry.AuthConfig) (api.Image, error) {
	return s.store.Pull(ctx, req.Ref, image.RemoteOptions{Insecure: req.Insecure, Platform: req.Platform, Auth: dockerAuth(ac)})
}

// PushAuth pushes with the credentials a Docker client sent.
func (s *imageService) PushAuth(ctx context.Context, req api.ImagePullRequest, ac registry.AuthConfig) error {
	return s.store.Push(ctx, req.Ref, image.RemoteOptions{Insecure: req.Insecure, Platform: req.Platform, Auth: dockerAuth(ac)})
}

// dockerAuth turns a Docker auth config into an authenticator; an empty
// one is nil, which means the daemon's own credentials.
func dockerAuth(ac registry.AuthConfig) authn.Authenticator {
	if ac == (registry.AuthConfig{}) {
		return nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken})
}

var _ dockerapi.AuthImages = (*imageService)(nil)
