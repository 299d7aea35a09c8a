package pki

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// FileCerts loads certificate/key file pairs given by users and keeps
// them, reloading a pair when either file's modification time or size
// changes. Its methods are safe for concurrent use.
type FileCerts struct {
	mu    sync.Mutex
	pairs map[[2]string]*filePair
}

type filePair struct {
	stamp [2]fileStamp
	cert  *tls.Certificate
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Get returns the certificate in certFile (PEM, the chain after the
// leaf) with the private key in keyFile.
func (fc *FileCerts) Get(certFile, keyFile string) (*tls.Certificate, error) {
	stamp, err := stamps(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	k := [2]string{certFile, keyFile}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if p := fc.pairs[k]; p != nil && p.stamp == stamp {
		return p.cert, nil
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, errdefs.Invalid("load the certificate %s with the key %s: %w", certFile, keyFile, err)
	}
	if fc.pairs == nil {
		fc.pairs = map[[2]string]*filePair{}
	}
	fc.pairs[k] = &filePair{stamp: stamp, cert: &c}
	return &c, nil
}

func stamps(files ...string) (s [2]fileStamp, err error) {
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return s, fmt.Errorf("certificate file: %w", err)
		}
		s[i] = fileStamp{st.ModTime(), st.Size()}
	}
	return s, nil
}
