package logs

import (
	"bytes"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TimeLayout is the timestamp layout conmon writes at the start of each
// record: RFC 3339 with exactly nine fractional digits and a numeric zone
// offset.
const TimeLayout = "2006-01-02T15:04:05.000000000-07:00"

// The stream names of a record.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// The tags of a record.
const (
	tagFull    = 'F'
	tagPartial = 'P'
)

// Parse parses one record line (without its newline) into an entry. The
// entry's Time is in UTC. A malformed line yields an errdefs.ErrInvalid
// error naming the field at fault.
func Parse(line []byte) (api.LogEntry, error) {
	var e api.LogEntry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if err := e.Time.UnmarshalText(ts); err != nil {
		return e, errdefs.Invalid("parse log record: bad timestamp %.40q: want RFC 3339 like %q", ts, TimeLayout)
	}
	e.Time = e.Time.UTC()
	if !ok {
		return e, errdefs.Invalid("parse log record: no stream after timestamp %.40q", ts)
	}

	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, errdefs.Invalid("parse log record: no tag after stream %.40q", stream)
	}
	switch string(stream) { // no allocation: the compiler compares in place
	case Stdout:
		e.Stream = Stdout
	case Stderr:
		e.Stream = Stderr
	default:
		return e, errdefs.Invalid("parse log record: unknown stream %.40q: want stdout or stderr", stream)
	}

	// The tag field ends at the next space, or at the end of the line for
	// an empty line whose writer left out the separator.
	tags, content, _ := bytes.Cut(rest, []byte{' '})
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	if len(tag) != 1 || (tag[0] != tagFull && tag[0] != tagPartial) {
		return e, errdefs.Invalid("parse log record: bad tag %.40q: want F or P", tags)
	}
	e.Partial = tag[0] == tagPartial
	e.Line = string(content)
	return e, nil
}

// AppendRecord appends e to dst as one record in conmon's format, newline
// included, and returns the extended slice. e.Line must not contain a
// newline (it would end the record early); e.Stream must be Stdout or
// Stderr. It is the inverse of Parse, for writers of test logs and tools.
func AppendRecord(dst []byte, e api.LogEntry) []byte {
	dst = e.Time.AppendFormat(dst, TimeLayout)
	dst = append(dst, ' ')
	dst = append(dst, e.Stream...)
	if e.Partial {
		dst = append(dst, " P "...)
	} else {
		dst = append(dst, " F "...)
	}
	dst = append(dst, e.Line...)
	return append(dst, '\n')
}
