package offline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrInUse means a lance server holds the data directory's lock.
var ErrInUse = errors.New("offline: the data directory is in use by a running lance server")

// Lock takes the flock the server holds on dataDir/LOCK while it runs, so
// that no server starts on the directory while an offline command reads or
// changes it, and so that the command does not run beside a server. It
// fails with ErrInUse when a server holds the lock. A data directory
// without a LOCK file (never served, or dataDir "") needs no lock: release
// is then a no-op. The lock file is never created.
func Lock(dataDir string) (release func(), err error) {
	if dataDir == "" {
		return func() {}, nil
	}
	path := filepath.Join(dataDir, lockFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offline: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked): stop the server first", ErrInUse, path)
		}
		return nil, fmt.Errorf("offline: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
