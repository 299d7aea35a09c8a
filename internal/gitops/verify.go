package gitops

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// VerifyCommit checks, when the spec lists signing keys, that c is signed
// by one of them: an SSH signature (git's gpg.format=ssh) by a key of
// VerifySSHKeys, or an OpenPGP signature by a key of VerifyGPGKeys. A
// commit that is unsigned, or signed by another key, is ErrInvalid and
// must not be applied. With no keys listed every commit passes.
func VerifyCommit(c *object.Commit, spec api.SourceSpec) error {
	if spec.VerifySSHKeys == "" && spec.VerifyGPGKeys == "" {
		return nil
	}
	id := c.Hash.String()[:12]
	sig := strings.TrimSpace(c.PGPSignature)
	if sig == "" {
		return errdefs.Invalid("commit %s is not signed, and the source applies only commits signed by its listed keys: nothing was applied", id)
	}
	if strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----") {
		if spec.VerifySSHKeys == "" {
			return errdefs.Invalid("commit %s has an SSH signature, and the source lists only OpenPGP keys (--verify-gpg-keys): nothing was applied", id)
		}
		payload, err := unsignedPayload(c)
		if err != nil {
			return err
		}
		if err := verifySSHSig(sig, payload, spec.VerifySSHKeys); err != nil {
			return errdefs.Invalid("commit %s: %v: nothing was applied", id, err)
		}
		return nil
	}
	if spec.VerifyGPGKeys == "" {
		return errdefs.Invalid("commit %s has an OpenPGP signature, and the source lists only SSH keys (--verify-ssh-keys): nothing was applied", id)
	}
	if _, err := c.Verify(spec.VerifyGPGKeys); err != nil {
		return errdefs.Invalid("commit %s is not signed by a key of --verify-gpg-keys (%v): nothing was applied", id, err)
	}
	return nil
}

// unsignedPayload is the commit as it was signed: without its signature.
func unsignedPayload(c *object.Commit) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		return nil, err
	}
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// CheckSSHKeys parses a list of allowed signing keys: authorized_keys
// lines, or allowed_signers lines (a principal before the key).
func CheckSSHKeys(list string) error {
	keys, err := parseSSHKeys(list)
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("it holds no key")
	}
	return err
}

func parseSSHKeys(list string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for i, line := range strings.Split(list, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			// allowed_signers: "PRINCIPALS [OPTIONS] KEYTYPE KEY".
			f := strings.Fields(line)
			for j := 1; j < len(f) && err != nil; j++ {
				k, _, _, _, err = ssh.ParseAuthorizedKey([]byte(strings.Join(f[j:], " ")))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is not an SSH public key", i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// sshSig is an SSH signature as git writes it (OpenSSH's PROTOCOL.sshsig).
type sshSig struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// verifySSHSig checks an armored SSH signature of payload, in git's
// namespace, by one of the allowed keys.
func verifySSHSig(armored string, payload []byte, allowed string) error {
	blk, _ := pem.Decode([]byte(armored))
	if blk == nil || blk.Type != "SSH SIGNATURE" {
		return fmt.Errorf("its SSH signature is not readable")
	}
	raw, ok := bytes.CutPrefix(blk.Bytes, []byte("SSHSIG"))
	var s sshSig
	if !ok || ssh.Unmarshal(raw, &s) != nil || s.Version != 1 {
		return fmt.Errorf("its SSH signature is not readable")
	}
	if s.Namespace != "git" {
		return fmt.Errorf("its SSH signature is for %q, not git", s.Namespace)
	}
	pub, err := ssh.ParsePublicKey(s.PublicKey)
	if err != nil {
		return fmt.Errorf("its SSH signature's key is not readable")
	}
	keys, err := parseSSHKeys(allowed)
	if err != nil {
		return err
	}
	listed := false
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), pub.Marshal()) {
			listed = true
		}
	}
	if !listed {
		return fmt.Errorf("it is signed by %s %s, which is not among the source's --verify-ssh-keys", pub.Type(), ssh.FingerprintSHA256(pub))
	}
	var h []byte
	switch s.HashAlg {
	case "sha512":
		sum := sha512.Sum512(payload)
		h = sum[:]
	case "sha256":
		sum := sha256.Sum256(payload)
		h = sum[:]
	default:
		return fmt.Errorf("its SSH signature uses the unknown hash %q", s.HashAlg)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(s.Signature, &sig); err != nil {
		return fmt.Errorf("its SSH signature is not readable")
	}
	signed := append([]byte("SSHSIG"), ssh.Marshal(struct {
		Namespace, Reserved, HashAlg string
		Hash                         []byte
	}{s.Namespace, s.Reserved, s.HashAlg, h})...)
	if err := pub.Verify(signed, &sig); err != nil {
		return fmt.Errorf("its SSH signature by %s does not match the commit", ssh.FingerprintSHA256(pub))
	}
	return nil
}
