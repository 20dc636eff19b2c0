package checkpoints

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, reports every failure as a
// *FormatError, and that whatever it accepts survives Encode and Decode
// unchanged.
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
		file, err := Decode(in, "fuzz")
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
