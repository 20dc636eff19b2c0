package trainrun

import "errors"

// LockDir takes the lock Train holds on its run directory, for other
// programs that checkpoint into a folder (the burda experiment), so that two
// processes never write the same checkpoints. Where the file system cannot
// lock, it returns a usable release and a note to print, with err nil.
func LockDir(dir string) (release func(), note, err error) {
	release, err = lockDir(dir)
	if errors.Is(err, errNoLocks) {
		return release, err, nil
	}
	return release, nil, err
}
