package atomicfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Kind is a kind of output file, known by its first bytes.
type Kind struct {
	Name  string            // for messages: "PNG picture"
	Is    func([]byte) bool // whether a file's first bytes (up to headSize) are of this kind
	Magic string            // how it starts, for messages
}

// Kinds of output the commands write.
var (
	PNG = Kind{Name: "PNG picture", Magic: `\x89PNG`, Is: func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }}
	// A report is one JSON object, small enough to be read whole: a
	// metrics.jsonl (many objects) is not one.
	JSONReport = Kind{Name: "JSON report", Magic: "{ and holding one JSON object", Is: func(b []byte) bool {
		t := bytes.TrimLeft(b, " \t\r\n")
		return len(b) < headSize && len(t) > 0 && t[0] == '{' && json.Valid(b)
	}}
	CPUProfile = Kind{Name: "CPU profile (gzip)", Magic: `\x1f\x8b`, Is: func(b []byte) bool { return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) }}
)

// CheckOutput checks, before any work is done, that path can receive an
// output of kind k. The rule: the folder must exist; path may be absent,
// an empty file, or a regular file that already holds an output of the
// same kind (which the write then replaces); anything else is refused
// with an error naming flag: a directory, a device or FIFO, a symbolic
// link loop, a checkpoint (a safetensors file), or any other file (a
// dataset, a report of another kind), which would be lost.
func CheckOutput(flag, path string, k Kind) error {
	if path == "" {
		return fmt.Errorf("%s: want a file name", flag)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if errors.Is(err, syscall.ELOOP) {
			return fmt.Errorf("%s %s: the folder %s is a loop of symbolic links", flag, path, dir)
		}
		return fmt.Errorf("%s %s: the folder %s does not exist", flag, path, dir)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, lerr := os.Lstat(path); lerr == nil {
			return fmt.Errorf("%s %s is a symbolic link to a missing file; remove it or pick another name", flag, path)
		}
		return nil
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s %s is a loop of symbolic links (following them never reaches a file); remove it or pick another name", flag, path)
	case err != nil:
		return fmt.Errorf("%s %s: %w", flag, path, err)
	case fi.IsDir():
		return fmt.Errorf("%s %s is a directory; want a file name for the %s", flag, path, k.Name)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s %s is not a regular file (%v); want a file name for the %s", flag, path, fi.Mode().Type(), k.Name)
	case fi.Size() == 0:
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	defer f.Close()
	head := make([]byte, headSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	head = head[:n]
	if isSafetensors(head, fi.Size()) {
		return fmt.Errorf("%s %s is a checkpoint (a safetensors file); refusing to overwrite it with a %s: pick another name", flag, path, k.Name)
	}
	if !k.Is(head) {
		return fmt.Errorf("%s %s exists and is not a %s (it does not start with %s); refusing to overwrite it: delete it or pick another name", flag, path, k.Name, k.Magic)
	}
	return nil
}

// headSize is how much of an existing file is read to tell its kind.
const headSize = 64 << 10

// isSafetensors reports whether b, the start of a file of size bytes, is
// a safetensors length prefix followed by the header's '{'.
func isSafetensors(b []byte, size int64) bool {
	if len(b) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(b)
	return n > 0 && n <= uint64(size-8) && b[8] == '{'
}
