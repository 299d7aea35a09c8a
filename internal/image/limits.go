package image

import (
	"io"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/units"
)

// DefaultMaxImageSize is the default bound on image data (see
// WithMaxImageSize): large enough for any reasonable image, small enough
// that one request cannot fill a disk by accident.
const DefaultMaxImageSize int64 = 20 << 30

// Option configures Open.
type Option func(*Store)

// WithMaxImageSize bounds the data one operation may bring into the store
// (n <= 0 keeps DefaultMaxImageSize): an imported archive once
// decompressed, each layer of a docker save archive decompressed, the
// compressed layers of an image written (import, pull, build), and the
// decompressed layers one run unpacks. Data over the bound is refused
// while it is read, with an errdefs.ErrInvalid error naming the limit.
func WithMaxImageSize(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxImageSize = n
		}
	}
}

// tooLarge is the error for what exceeds the image size limit; what is
// the subject of a sentence, such as "the decompressed archive".
func (s *Store) tooLarge(what string) error {
	return errdefs.Invalid("%s exceeds the image size limit of %s: raise it with skiff daemon --max-image-size", what, units.Bytes(s.maxImageSize))
}

// limitReader returns a reader that fails once more than n bytes are read,
// instead of silently stopping like io.LimitReader: the read after the
// n-th byte returns over.
func limitReader(r io.Reader, n int64, over error) io.Reader {
	return (&budget{left: n, over: over}).reader(r)
}

// budget is what may still be read, shared by the readers it makes (the
// layers of one image); it is not safe for concurrent use.
type budget struct {
	left int64
	over error
}

// reader counts what is read from r against the budget.
func (b *budget) reader(r io.Reader) io.Reader { return &budgetReader{r: r, b: b} }

type budgetReader struct {
	r io.Reader
	b *budget
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.b.left <= 0 {
		// At the bound: more data is over it; the end, or the source's
		// own error, is passed on.
		var one [1]byte
		if n, err := br.r.Read(one[:]); n > 0 {
			return 0, br.b.over
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > br.b.left {
		p = p[:br.b.left]
	}
	n, err := br.r.Read(p)
	br.b.left -= int64(n)
	return n, err
}
