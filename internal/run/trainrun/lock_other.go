//go:build !unix

package trainrun

import "errors"

var ErrLocked = errors.New("run directory in use")

var errNoLocks = errors.New("note: no file locks on this system; a second trainer on this -out would not be detected")

// lockDir does nothing where flock(2) does not exist: two trainers on one
// run directory are then not detected.
func lockDir(dir string) (func(), error) { return func() {}, errNoLocks }
