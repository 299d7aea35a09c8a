package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// maxRecordSize bounds one record, newline excluded. conmon writes at most
// 8 KiB of content per record; longer records are treated as malformed.
const maxRecordSize = 1 << 20

// readChunk is how much is read from a log file at a time.
const readChunk = 64 << 10

// RotatedSuffix is appended to a log's path to name its previous file.
const RotatedSuffix = ".1"

// Options select the entries Read returns.
type Options struct {
	// Tail, when >= 0, returns only the last Tail entries that pass the
	// Since and Until filters; < 0 means all.
	Tail int
	// Since keeps entries at or after it; zero keeps all.
	Since time.Time
	// Until keeps entries before it; zero sets no bound. With Follow,
	// Read also returns once the clock passes Until.
	Until time.Time
	// Follow keeps reading new entries as they are written.
	Follow bool
	// Done, when Follow is set, tells the reader the writer has finished
	// (the container exited and its monitor flushed its output): Read
	// reads what is left up to the end and returns nil.
	Done <-chan struct{}
	// Idle, when set with Follow, is called each time everything written
	// so far was passed to fn and the reader is about to wait for more:
	// the moment to flush what fn buffered. Its error ends Read.
	Idle func() error
	// OnMalformed, when set, is called with a *RecordError for each record
	// that cannot be parsed. Such records are skipped either way; the
	// number of calls is the number of records skipped.
	OnMalformed func(err error)
}

// RecordError describes a record that Read skipped.
type RecordError struct {
	// Path is the file that holds the record.
	Path string
	// Offset is the record's position in the file.
	Offset int64
	// Err says what is wrong with it.
	Err error
}

// Error implements error.
func (e *RecordError) Error() string {
	return fmt.Sprintf("log %s: record at offset %d skipped: %v", e.Path, e.Offset, e.Err)
}

// Unwrap returns the parse error.
func (e *RecordError) Unwrap() error { return e.Err }

var (
	errTooLong      = errdefs.Invalid("record longer than %d bytes", maxRecordSize)
	errUnterminated = errdefs.Invalid("unterminated record: the writer stopped in the middle of it")
)

// Read calls fn for each entry of the log at path, in file order, starting
// with the oldest rotated file kept (path+".N" ... path+".2", then
// path+".1") when there are any. It returns when the
// log is exhausted (no Follow), when Done is closed and the rest was read,
// when ctx is done (ctx.Err()), or when fn returns an error (that error).
// Without Follow it reads what the files hold when it opens them. A
// missing log file is an empty log (the container may not have written
// yet); with Follow it waits for the file to appear, and the log's
// directory must exist (errdefs.ErrNotFound otherwise).
func Read(ctx context.Context, path string, opts Options, fn func(api.LogEntry) error) error {
	r := &reader{path: path, opts: opts, fn: fn}
	if opts.Follow {
		w, err := newWatcher(filepath.Dir(path), filepath.Base(path), filepath.Base(path)+RotatedSuffix)
		if err != nil {
			return err
		}
		defer w.close()
		r.w = w
	}

	// Open the current file before the rotated one: a rotation in between
	// then shows as both names on one file, which is read once, instead of
	// a file that slipped between the two opens unseen.
	cur, err := openSegment(path)
	if err != nil {
		return err
	}
	prev, err := openSegment(path + RotatedSuffix)
	if err != nil {
		cur.close()
		return err
	}
	if prev != nil && cur != nil && os.SameFile(prev.info, cur.info) {
		prev.close()
		prev = nil
	}
	if cur == nil {
		// Between a rename to .1 and the new file: .1 is the live file.
		cur, prev = prev, nil
	}
	older, err := openOlder(path, prev, cur)
	if err != nil {
		cur.close()
		prev.close()
		return err
	}
	r.cur = cur
	if prev != nil {
		r.retired = append(r.retired, prev)
	}
	defer func() {
		r.cur.close()
		for _, s := range r.retired {
			s.close()
		}
		for _, s := range older {
			s.close()
		}
	}()

	if !opts.Follow {
		// Read a snapshot: what the files hold now.
		for _, s := range []*segment{prev, cur} {
			if s != nil {
				s.limit = s.info.Size()
			}
		}
	}
	if opts.Tail >= 0 {
		if err := r.seekTail(append([]*segment{prev}, older...)); err != nil {
			return err
		}
	}
	for i := len(older) - 1; i >= 0; i-- {
		if err := r.drain(ctx, older[i]); err != nil {
			return err
		}
		r.abandon(older[i])
	}
	if prev != nil {
		if err := r.drain(ctx, prev); err != nil {
			return err
		}
		r.abandon(prev) // cur exists, so the writer has left prev
	}
	if cur != nil {
		if err := r.drain(ctx, cur); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	return r.follow(ctx)
}

// reader is the state of one Read call.
type reader struct {
	path string
	opts Options
	fn   func(api.LogEntry) error
	w    *watcher
	// cur is the file being read (nil while there is none).
	cur *segment
	// retired are files read to their end that may still show under the
	// log's names; see prune.
	retired []*segment
}

// seekTail positions r.cur and the earlier files (newest first) so that
// only the last opts.Tail matching entries remain to be read.
func (r *reader) seekTail(earlier []*segment) error {
	want := r.opts.Tail
	for _, s := range append([]*segment{r.cur}, earlier...) {
		if s == nil {
			continue
		}
		if want == 0 {
			s.skipTo(s.info.Size())
			continue
		}
		start, found, err := scanBack(s.f, s.info.Size(), want, r.match)
		if err != nil {
			return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read log %s: %w", s.name, err))
		}
		s.skipTo(start)
		want -= found
	}
	return nil
}

// match reports whether line is a record that passes the time filters.
func (r *reader) match(line []byte) bool {
	e, err := Parse(line)
	return err == nil && r.keep(e.Time)
}

func (r *reader) keep(t time.Time) bool {
	if !r.opts.Since.IsZero() && t.Before(r.opts.Since) {
		return false
	}
	if !r.opts.Until.IsZero() && !t.Before(r.opts.Until) {
		return false
	}
	return true
}

// drain passes every complete record of s to fn.
func (r *reader) drain(ctx context.Context, s *segment) error {
	cancel := ctx.Done()
	err := s.records(func(line []byte, off int64) error {
		select {
		case <-cancel:
			return errCanceled
		default:
		}
		if line == nil {
			r.malformed(s, off, errTooLong)
			return nil
		}
		e, err := Parse(line)
		if err != nil {
			r.malformed(s, off, err)
			return nil
		}
		if !r.keep(e.Time) {
			return nil
		}
		return r.fn(e)
	})
	if err == errCanceled {
		return ctx.Err()
	}
	return err
}

// abandon reports and drops what is left of s, which its writer will not
// finish.
func (r *reader) abandon(s *segment) {
	if off, ok := s.unterminated(); ok {
		r.malformed(s, off, errUnterminated)
		s.r, s.w, s.skipping = 0, 0, false
	}
}

func (r *reader) malformed(s *segment, off int64, err error) {
	if r.opts.OnMalformed != nil {
		r.opts.OnMalformed(&RecordError{Path: s.name, Offset: off, Err: err})
	}
}

// errCanceled stops a drain when the context is done; drain turns it into
// ctx.Err().
var errCanceled = errors.New("read canceled")

// openOlder opens the files a log keeps besides .1 (path.2, path.3, ...,
// newest first, up to the first missing one), each read as it is now.
// A file that is also prev or cur (a rotation while opening) is left out.
// Without a .1 there is nothing older: a stray path.2 is not the log's.
func openOlder(path string, prev, cur *segment) ([]*segment, error) {
	if _, err := os.Lstat(path + ".1"); err != nil {
		return nil, nil
	}
	var out []*segment
	for n := 2; n <= api.MaxLogFiles; n++ {
		s, err := openSegment(fmt.Sprintf("%s.%d", path, n))
		if err != nil {
			for _, o := range out {
				o.close()
			}
			return nil, err
		}
		if s == nil {
			break
		}
		if (prev != nil && os.SameFile(s.info, prev.info)) || (cur != nil && os.SameFile(s.info, cur.info)) {
			s.close()
			continue
		}
		s.limit = s.info.Size()
		out = append(out, s)
	}
	return out, nil
}

// segment reads complete records from one log file.
type segment struct {
	name string
	f    *os.File
	info fs.FileInfo
	// buf[r:w] holds bytes read but not yet consumed; off is the file
	// offset of buf[r].
	buf  []byte
	r, w int
	off  int64
	// pos is the file offset the next read starts at.
	pos int64
	// limit, when >= 0, is where reading stops (a snapshot's end).
	limit int64
	// skipping is set while the rest of an over-long record, which
	// started at skipStart, is discarded.
	skipping  bool
	skipStart int64
}

// openSegment opens the log file at name; a missing file is a nil segment.
func openSegment(name string) (*segment, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("open log: %w", err))
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("stat log: %w", err))
	}
	return &segment{name: name, f: f, info: info, buf: make([]byte, readChunk), limit: -1}, nil
}

func (s *segment) close() {
	if s != nil {
		s.f.Close()
	}
}

// skipTo makes the next record start at off.
func (s *segment) skipTo(off int64) {
	s.r, s.w, s.off, s.pos, s.skipping = 0, 0, off, off, false
}

// unterminated reports the offset of a record left without its newline.
func (s *segment) unterminated() (int64, bool) {
	switch {
	case s.skipping:
		return s.skipStart, true
	case s.w > s.r:
		return s.off, true
	}
	return 0, false
}

// records reads s up to its end (or limit) and calls emit with each
// complete record and its offset; line is nil for an over-long record.
// The line is only valid during the call.
func (s *segment) records(emit func(line []byte, off int64) error) error {
	eof := false
	for {
		// Emit the complete records in the buffer.
		for {
			i := bytes.IndexByte(s.buf[s.r:s.w], '\n')
			if i < 0 {
				break
			}
			line, off := s.buf[s.r:s.r+i], s.off
			s.r += i + 1
			s.off += int64(i) + 1
			if s.skipping {
				s.skipping = false
				line, off = nil, s.skipStart
			}
			if err := emit(line, off); err != nil {
				return err
			}
		}
		if eof {
			return nil
		}
		// Make room: move the unconsumed tail to the front, then grow
		// for a long record or give up on one that is too long.
		if s.r > 0 {
			s.w = copy(s.buf, s.buf[s.r:s.w])
			s.r = 0
		}
		if s.w == len(s.buf) {
			if len(s.buf) >= maxRecordSize {
				s.skipping, s.skipStart = true, s.off
				s.off += int64(s.w)
				s.w = 0
			} else {
				s.buf = append(s.buf, make([]byte, len(s.buf))...)
			}
		}
		want := len(s.buf) - s.w
		if s.limit >= 0 {
			if s.pos >= s.limit {
				return nil
			}
			want = int(min(int64(want), s.limit-s.pos))
		}
		n, err := s.f.ReadAt(s.buf[s.w:s.w+want], s.pos)
		s.w += n
		s.pos += int64(n)
		if s.skipping {
			// Discard up to the newline that ends the over-long record.
			i := bytes.IndexByte(s.buf[:s.w], '\n')
			if i < 0 {
				i = s.w
			}
			s.off += int64(i)
			s.w = copy(s.buf, s.buf[i:s.w])
		}
		switch {
		case err == io.EOF || (err == nil && n == 0):
			eof = true
		case err != nil:
			return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("read log %s: %w", s.name, err))
		case s.limit >= 0 && s.pos >= s.limit:
			eof = true
		}
	}
}
