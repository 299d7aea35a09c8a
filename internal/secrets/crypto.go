package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"skiff.dev/skiff/api/errdefs"
)

// KeySize is the size of the key file's key and of the data key: 256 bits.
const KeySize = 32

// errOpen is why a ciphertext does not open: a wrong key or altered data.
var errOpen = errors.New("the ciphertext does not open with this key: the key file is not the one the secrets were sealed with, or the data was altered")

// seal encrypts plain with key (AES-256-GCM), binding it to aad; the
// result is nonce || ciphertext || tag.
func seal(key, plain, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plain)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, aad), nil
}

// open decrypts what seal made with the same key and aad. A wrong key,
// another aad or any altered byte is errOpen.
func open(key, sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize()+gcm.Overhead() {
		return nil, errOpen
	}
	n := gcm.NonceSize()
	plain, err := gcm.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// LoadOrCreateKeyFile reads the key file at path, making it (random, mode
// 0600) when it does not exist and create is true. A key file of the
// wrong size or readable by others is refused.
func LoadOrCreateKeyFile(path string, create bool) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secrets key file %s: %w", path, err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("write secrets key file %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secrets key file %s: %w", path, err)
		}
		return key, f.Close()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.Unavailable("secrets key file %s is missing: the secrets in the database cannot be read without it: restore it from your backup (see docs/secrets.md)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets key file: %w", err)
	}
	if len(key) != KeySize {
		return nil, errdefs.Invalid("secrets key file %s holds %d bytes, want %d: restore it from your backup (see docs/secrets.md)", path, len(key), KeySize)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, errdefs.Invalid("secrets key file %s has mode %v: others may read it: chmod 600 it", path, st.Mode().Perm())
	}
	return key, nil
}
