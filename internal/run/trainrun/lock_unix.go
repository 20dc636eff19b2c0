//go:build unix

package trainrun

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is wrapped by the error for a run directory in use.
var ErrLocked = errors.New("run directory in use")

// errNoLocks is returned, with a usable release, where the file system
// cannot lock.
var errNoLocks = errors.New("note: the file system does not support locks; a second trainer on this -out would not be detected")

// lockDir takes an exclusive flock(2) on the directory dir itself, without
// waiting, for as long as a trainer uses it. The kernel releases the lock
// when the process exits, however it exits (kill -9 included), so a stale
// lock never blocks a later run, and no lock file is left behind.
func lockDir(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("-out %s: opening it to lock it: %w", dir, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			// A file system without locks (some network mounts): train
			// anyway, as before locking existed, and say so.
			return func() {}, fmt.Errorf("%w: %s: %v", errNoLocks, dir, err)
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("-out %s is in use: another process is training or resuming there (it holds the folder's lock); wait for it to finish or stop it, or pick another -out: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("-out %s: locking it: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
