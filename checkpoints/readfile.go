package checkpoints

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Reading a file from disk (ReadFile) is done in two steps, so that what a
// header claims never decides what is read or allocated:
//
//  1. the path must be a regular file (a FIFO would block, /dev/zero never
//     ends, a directory is a mistake); its size comes from fstat;
//  2. the length prefix and the header are read and parsed (readHeader),
//     and every declared size is checked against that file size: the
//     header length, each tensor's data_offsets. The file as a whole must
//     also fit the memory limit (MaxReadSize).
//
// Only then is the rest read, into one buffer of exactly the file's size;
// a file that grows or shrinks meanwhile is an error.

// MaxReadSize is the largest checkpoint ReadFile reads: half the machine's
// memory (total RAM from sysinfo on Linux), or 16 GiB where that is
// unknown. A variable so that a program with other needs may change it.
var MaxReadSize = defaultMaxReadSize()

// fileHeader is what the first 8+N bytes of a file say.
type fileHeader struct {
	n       uint64 // header length
	hdr     []byte // the header's bytes
	meta    map[string]string
	entries []entry
}

// readHeader reads the length prefix and the header of a file of size
// bytes from r, and checks the declared sizes against size. Nothing it
// allocates depends on the header's claims beyond the header length, which
// it checks first against MaxHeaderSize and size. Errors are *FormatError.
func readHeader(r io.Reader, size int64, name string) (*fileHeader, error) {
	fail := func(wrapped error, format string, args ...any) (*fileHeader, error) {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf(format, args...), Err: wrapped}
	}
	if size < 8 {
		return fail(io.ErrUnexpectedEOF, "file is %d bytes, shorter than the 8-byte header length: truncated", size)
	}
	var prefix [8]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return fail(err, "reading the header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return fail(nil, "not a safetensors file: header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return fail(io.ErrUnexpectedEOF, "header length %d runs past the end of the file: truncated (want at least %d bytes, found %d)", n, 8+n, size)
	}
	// Grown as bytes arrive rather than allocated at once: a file whose
	// size is a hole (sparse) or a lie costs only what it really holds.
	hdr, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && uint64(len(hdr)) < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fail(err, "reading the %d-byte header: %v", n, err)
	}
	meta, entries, err := parseHeader(hdr)
	if err != nil {
		return fail(nil, "%v", err)
	}
	dataLen := size - 8 - int64(n)
	for _, e := range entries {
		if e.end > dataLen {
			return fail(io.ErrUnexpectedEOF, "tensor %q data_offsets [%d, %d] run past the end of the data section: truncated (want at least %d data bytes, found %d)", e.name, e.begin, e.end, e.end, dataLen)
		}
	}
	return &fileHeader{n: n, hdr: hdr, meta: meta, entries: entries}, nil
}

// ReadFile reads and decodes the checkpoint at path: see above for the
// order of checks. The tensors share the buffer the file was read into,
// each with its capacity capped, so append cannot overwrite a neighbour.
func ReadFile(path string) (*File, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fi.Size()
	if _, err := readHeader(f, size, path); err != nil {
		return nil, err
	}
	if size > MaxReadSize {
		return nil, &FormatError{File: path, Msg: fmt.Sprintf("file is %d bytes, over the %d-byte limit of what is read into memory (checkpoints.MaxReadSize: half of this machine's memory)", size, MaxReadSize)}
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("checkpoints: reading %s: %w (did the file change while it was read?)", path, err)
	}
	if extra, _ := f.ReadAt(make([]byte, 1), size); extra > 0 {
		return nil, fmt.Errorf("checkpoints: %s grew while it was read; read it again once it is written", path)
	}
	// b is ours, so the tensors may share it.
	return decode(b, path, false)
}

// openRegular opens path for reading if it is a regular file, without
// blocking on a FIFO, and returns its fstat.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonBlock, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	// The path may have been replaced between Stat and Open.
	if fi, err = f.Stat(); err == nil {
		err = checkRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// ErrNotRegular is wrapped by the error for a path that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

func checkRegular(path string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "a special file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&os.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&os.ModeCharDevice != 0:
		kind = "a character device"
	case m&os.ModeDevice != 0:
		kind = "a block device"
	case m&os.ModeSocket != 0:
		kind = "a socket"
	}
	return fmt.Errorf("checkpoints: %s is %s, not a checkpoint file: %w", path, kind, ErrNotRegular)
}
