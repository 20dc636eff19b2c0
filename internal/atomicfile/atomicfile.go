package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// writes is held for reading by every write under way; Freeze takes it for
// writing.
var writes sync.RWMutex

// Freeze waits for the writes under way in this process to finish and holds
// back every later one, for a process about to exit: it then leaves no
// temporary file behind and no save half done. It does not return while a
// write is in progress; writes that start after it block for good.
func Freeze() { writes.Lock() }

// Write creates path atomically with the bytes that fn writes to w.
// If fn or any file operation fails, path is left untouched and no
// temporary file remains.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) (err error) {
	writes.RLock()
	defer writes.RUnlock()
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = fn(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: closing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	syncDir(dir)
	return nil
}

// WriteFile is Write for a byte slice already in memory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// syncDir makes a completed rename durable. Some file systems refuse to
// fsync a directory; the rename has still happened, so that is not an error.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
