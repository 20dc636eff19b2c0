package checkpoints

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/govae/govae/internal/testutil"
)

// FuzzDecode checks that Decode never panics, allocates no more than a
// small multiple of the input, reports every failure as a *FormatError, and
// that whatever it accepts survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.safetensors"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed files in testdata/ (%v)", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var file *File
		var err error
		if a := testutil.Allocated(func() { file, err = Decode(in, "fuzz") }); a > decodeAllocLimit(len(in)) {
			t.Fatalf("Decode allocated %d bytes for %d input bytes (limit %d)", a, len(in), decodeAllocLimit(len(in)))
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			return
		}
		// The result must not alias the input.
		clear(in)

		var buf bytes.Buffer
		if err := Encode(&buf, file); err != nil {
			t.Fatalf("a decoded file does not encode: %v", err)
		}
		again, err := Decode(buf.Bytes(), "re-encoded")
		if err != nil {
			t.Fatalf("a re-encoded file does not decode: %v", err)
		}
		if d := diffFiles(file, again); d != "" {
			t.Fatalf("round trip changed the file: %s", d)
		}
		if !again.HasChecksum() {
			t.Fatal("re-encoded file has no checksum")
		}
		var buf2 bytes.Buffer
		if err := Encode(&buf2, again); err != nil || !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("encoding is not stable (err %v)", err)
		}
	})
}

// decodeAllocLimit bounds what Decode may allocate for n input bytes: the
// copy of the data section, and the JSON decoder's buffer and tokens, a few
// bytes for each header byte. Nothing the header claims (tensor sizes, the
// header length) may cost more.
func decodeAllocLimit(n int) uint64 { return 64<<10 + 16*uint64(n) }

// FuzzReadHeader checks the header reader that ReadFile runs before reading
// any data: it never panics, reports failures as *FormatError, allocates
// no more than a small multiple of the header bytes it was given whatever
// sizes they claim (the file size passed is the input's, or a huge one as a
// sparse file would report), and agrees with Decode: whatever Decode
// accepts it accepts with the same tensors, and whatever it refuses for the
// true size Decode refuses too.
func FuzzReadHeader(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.safetensors"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed files in testdata/ (%v)", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, sparse bool) {
		size := int64(len(b))
		if sparse {
			size = 40 << 30
		}
		var h *fileHeader
		var err error
		if a := testutil.Allocated(func() { h, err = readHeader(bytes.NewReader(b), size, "fuzz") }); a > decodeAllocLimit(len(b)) {
			t.Fatalf("readHeader allocated %d bytes for %d input bytes (limit %d)", a, len(b), decodeAllocLimit(len(b)))
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
		}
		if sparse {
			return
		}
		file, derr := Decode(b, "fuzz")
		switch {
		case derr == nil && err != nil:
			t.Fatalf("Decode accepts what readHeader refuses: %v", err)
		case err != nil:
			return
		case derr == nil && len(h.entries) != len(file.Tensors):
			t.Fatalf("readHeader sees %d tensors, Decode %d", len(h.entries), len(file.Tensors))
		}
	})
}
