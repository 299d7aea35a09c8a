package api

import (
	"strconv"
	"strings"

	"github.com/docker/go-units"

	"skiff.dev/skiff/api/errdefs"
)

// LogConfig is how a container's log is kept. skiff keeps every
// container's output in a log file of its own; docker's json-file,
// local and none drivers are accepted as names for it.
type LogConfig struct {
	// Driver is the docker driver name asked for ("", json-file, local
	// or none): the log is skiff's in every case.
	Driver string `json:"driver,omitempty"`
	// MaxSize caps the log file in bytes before it is rotated (0: the
	// daemon's --log-max-size).
	MaxSize int64 `json:"maxSize,omitempty"`
	// MaxFiles is how many files the log keeps, the current one
	// included, once rotated (0: 2, the current and the previous one).
	MaxFiles int `json:"maxFiles,omitempty"`
}

// LogDrivers are the docker log drivers accepted as names for skiff's log.
var LogDrivers = []string{"json-file", "local", "none"}

// MaxLogFiles bounds LogConfig.MaxFiles.
const MaxLogFiles = 100

// CheckLogDriver refuses a driver other than LogDrivers (or "").
func CheckLogDriver(d string) error {
	for _, x := range LogDrivers {
		if d == x || d == "" {
			return nil
		}
	}
	return errdefs.Invalid("log driver %q is not supported: skiff keeps each container's log itself; use json-file, local or none (docker's names for it), or leave it out", d)
}

// ParseLogOpt applies one of docker's --log-opt KEY=VALUE to c: max-size
// (like 10m) or max-file (a count from 1). Any other key is ErrInvalid
// naming it.
func ParseLogOpt(c *LogConfig, opt string) error {
	k, v, _ := strings.Cut(opt, "=")
	switch k {
	case "max-size":
		n, err := units.RAMInBytes(v)
		if err != nil || n <= 0 {
			return errdefs.Invalid("log option max-size=%q: give a size like 10m", v)
		}
		c.MaxSize = n
	case "max-file":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLogFiles {
			return errdefs.Invalid("log option max-file=%q: give a count of files from 1 to %d", v, MaxLogFiles)
		}
		c.MaxFiles = n
	default:
		return errdefs.Invalid("log option %q is not supported: use max-size=SIZE or max-file=N", k)
	}
	return nil
}

// Check refuses a bad driver, a negative size and a count out of range.
func (c LogConfig) Check() error {
	if err := CheckLogDriver(c.Driver); err != nil {
		return err
	}
	if c.MaxSize < 0 {
		return errdefs.Invalid("log max size %d must not be negative", c.MaxSize)
	}
	if c.MaxFiles < 0 || c.MaxFiles > MaxLogFiles {
		return errdefs.Invalid("log max files %d: give a count from 1 to %d", c.MaxFiles, MaxLogFiles)
	}
	return nil
}
