package logs

import (
	"bytes"
	"io"
	"os"
)

// scanBack finds where the last n records of f[0:end] that satisfy match
// begin, reading backwards from end in chunks, so that the cost depends on
// the tail's size and not on the file's. An unterminated record at end is
// not counted. It returns the offset of the earliest record found and how
// many were found (fewer than n when the file holds fewer); with none
// found, start is just past the last complete record.
func scanBack(f *os.File, end int64, n int, match func(line []byte) bool) (start int64, found int, err error) {
	b := backReader{f: f, start: end, end: end}
	nl, err := b.lastNewline(end)
	if err != nil || nl < 0 {
		return 0, 0, err
	}
	recEnd := nl // the newline that ends the record being looked at
	start = recEnd + 1
	for found < n {
		p, err := b.lastNewline(recEnd)
		if err != nil {
			return 0, 0, err
		}
		recStart := p + 1
		if recEnd-recStart < maxRecordSize && match(b.bytes(recStart, recEnd)) {
			found++
			start = recStart
		}
		if recStart == 0 {
			break
		}
		recEnd = p
	}
	return start, found, nil
}

// backReader holds a window f[start:end] of a file read backwards.
type backReader struct {
	f          *os.File
	buf        []byte
	start, end int64
}

// lastNewline returns the offset of the last '\n' before off, or -1 if
// there is none. off must not be after the window's end. The window keeps
// the bytes from the newline found up to off, except for a stretch of more
// than maxRecordSize bytes, which can only be an over-long record.
func (b *backReader) lastNewline(off int64) (int64, error) {
	for {
		if i := bytes.LastIndexByte(b.buf[:off-b.start], '\n'); i >= 0 {
			return b.start + int64(i), nil
		}
		if b.start == 0 {
			return -1, nil
		}
		// Read the chunk before the window, keeping the window's bytes
		// before off unless they are already too many for one record.
		keep := b.buf[:off-b.start]
		if len(keep) > maxRecordSize {
			keep = nil
			off = b.start
		}
		n := min(int64(readChunk), b.start)
		buf := make([]byte, int(n)+len(keep))
		if _, err := b.f.ReadAt(buf[:n], b.start-n); err != nil && err != io.EOF {
			return 0, err
		}
		copy(buf[n:], keep)
		b.buf = buf
		b.start -= n
		b.end = b.start + int64(len(buf))
	}
}

// bytes returns f[from:to]; the range must lie in the window.
func (b *backReader) bytes(from, to int64) []byte {
	return b.buf[from-b.start : to-b.start]
}
