package build

import "io"

// Decompress returns the uncompressed stream of rc, whatever its
// compression (gzip, bzip2, xz, zstd or none); closing it closes rc.
// The Docker API's archive upload (docker cp) reads tars with it.
func Decompress(rc io.ReadCloser) (io.ReadCloser, error) { return decompress(rc) }
