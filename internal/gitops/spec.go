package gitops

import (
	"crypto/x509"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Interval bounds.
const (
	DefaultInterval = 30 * time.Second
	MinInterval     = time.Second
)

var sourceNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// CheckSource validates a source as added: its name, URL, ref choice,
// range, path and interval. Messages name the flag to fix.
func CheckSource(s api.Source) error {
	if len(s.Name) > 63 || !sourceNameRE.MatchString(s.Name) {
		return errdefs.Invalid("source name %q is not valid: use lowercase letters, digits and '-', starting with a letter, at most 63 characters", s.Name)
	}
	sp := s.Spec
	if sp.Git == "" {
		return errdefs.Invalid("give the repository with --git URL")
	}
	ep, err := transport.NewEndpoint(sp.Git)
	if err != nil {
		return errdefs.Invalid("--git %q is not a git URL: %v", sp.Git, err)
	}
	switch ep.Protocol {
	case "http", "https", "file":
	case "ssh":
		if sp.SSHKeyFile == "" {
			return errdefs.Invalid("--git %s is an ssh URL: give the private key with --ssh-key FILE", sp.Git)
		}
	default:
		return errdefs.Invalid("--git %s: the %s protocol is not supported: use https://, http://, ssh:// or file://", sp.Git, ep.Protocol)
	}
	n := 0
	for _, v := range []string{sp.Branch, sp.Tag, sp.Semver} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return errdefs.Invalid("give at most one of --branch, --tag and --semver")
	}
	if sp.Semver != "" {
		if _, err := semver.NewConstraint(sp.Semver); err != nil {
			return errdefs.Invalid("--semver %q is not a version range (such as \">=1.2.0 <2\" or \"~1.4\"): %v", sp.Semver, err)
		}
	}
	if c := path.Clean(strings.Trim(sp.Path, "/")); c == ".." || strings.HasPrefix(c, "../") {
		return errdefs.Invalid("--path %q leaves the repository: give a directory in it, such as deploy/prod", sp.Path)
	}
	if sp.Interval.Duration != 0 && sp.Interval.Duration < MinInterval {
		return errdefs.Invalid("--interval %s is too short: give %s or more", sp.Interval, MinInterval)
	}
	if sp.SSHKeyFile != "" && !path.IsAbs(sp.SSHKeyFile) || sp.KnownHostsFile != "" && !path.IsAbs(sp.KnownHostsFile) {
		return errdefs.Invalid("--ssh-key and --known-hosts must be absolute paths on the daemon's host")
	}
	if sp.CABundle != "" {
		if ep.Protocol != "https" {
			return errdefs.Invalid("--ca-file is for https:// repositories, and --git %s is not one", sp.Git)
		}
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(sp.CABundle)) {
			return errdefs.Invalid("--ca-file: no PEM certificate in it: give the CA certificate(s) of the git host, in PEM (-----BEGIN CERTIFICATE-----)")
		}
	}
	if sp.VerifySSHKeys != "" {
		if err := CheckSSHKeys(sp.VerifySSHKeys); err != nil {
			return errdefs.Invalid("--verify-ssh-keys: %v: give authorized_keys or allowed_signers lines", err)
		}
	}
	if sp.VerifyGPGKeys != "" {
		if _, err := openpgp.ReadArmoredKeyRing(strings.NewReader(sp.VerifyGPGKeys)); err != nil {
			return errdefs.Invalid("--verify-gpg-keys: not an armored OpenPGP public key: %v (export one with gpg --armor --export KEYID)", err)
		}
	}
	for flag, name := range map[string]string{"--token-secret": sp.TokenSecret, "--webhook-secret": sp.WebhookSecret} {
		if name != "" {
			if err := api.CheckSecretName(name); err != nil {
				return errdefs.Invalid("%s: %v", flag, err)
			}
		}
	}
	return nil
}

// interval is how often s is polled.
func interval(s api.SourceSpec) time.Duration {
	if s.Interval.Duration > 0 {
		return s.Interval.Duration
	}
	return DefaultInterval
}

// prune reports whether s prunes (default true).
func prune(s api.SourceSpec) bool { return s.Prune == nil || *s.Prune }
