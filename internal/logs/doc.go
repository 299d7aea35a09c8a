// Package logs reads container logs in the k8s-file format that conmon
// writes, and follows them as they grow.
//
// A log file is a sequence of records, one per line:
//
//	<timestamp> <stream> <tag> <content>\n
//
// where timestamp is RFC 3339 with nanoseconds and a numeric offset
// (conmon 2.1.6 writes "2006-01-02T15:04:05.000000000-07:00", always nine
// fractional digits, in the host's local zone), stream is "stdout" or
// "stderr", and tag is "F" for a record that ends a line or "P" for a
// partial one whose line continues in the next record of the same stream
// (conmon cuts a line at each 8 KiB read from the container's pipe). Tags
// may carry further ":"-separated fields as the CRI allows; only the first
// is used.
//
// Contract of Read:
//
//   - A record is complete only with its trailing newline. An unterminated
//     last record is treated as not written yet; once the writer is known
//     to be done (Options.Done) or has moved to a new file, it is reported
//     as malformed.
//   - Malformed records (bad timestamp, unknown stream, no tag, longer than
//     1 MiB) are skipped, never returned as the error of Read: one broken
//     line must not hide the rest of a log. Each skipped record is reported
//     to Options.OnMalformed, as a *RecordError, so the caller can count or
//     log them.
//   - Rotation: the previous file is <path>.1 (one is kept). Read reads it
//     before <path>. While following, a file that replaces <path> (rename
//     of <path> to <path>.1 then a new <path>, or a new file renamed over
//     <path> as conmon's own --log-size-max does) is switched to after the
//     old one has been read to its end, so no record is lost or repeated as
//     long as the reader is not more than one rotation behind the writer.
//     This relies on the writer no longer writing a file once it has put a
//     new one at <path>, which is how conmon rotates.
//   - Following uses inotify on the log's directory (IN_MODIFY, IN_CREATE,
//     IN_MOVED_TO, filtered to the log's two names): no polling. One
//     directory watch instead of a watch on the file itself cannot miss a
//     write between opening a new file and watching it, and covers the
//     file under both of its names.
//   - Tail counts records (a partial record is one) that pass the Since and
//     Until filters, and finds them by scanning backwards from the end of
//     the file: its cost grows with the tail, not with the size of the log.
//   - Since and Until are compared with each record's timestamp. Records of
//     stdout and stderr may be slightly out of time order in the file (each
//     stream is stamped when conmon reads it); Read keeps file order and
//     filters each record on its own.
//   - Times are returned in UTC.
package logs
