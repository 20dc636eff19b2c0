package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/testutil"
)

// addSeeds seeds f with every file in testdata/idx, valid and broken.
func addSeeds(f *testing.F) {
	entries, err := os.ReadDir(testdataDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(testdataDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// decoded returns the IDX bytes in in: in itself, or its decompression.
func decoded(t *testing.T, in []byte) []byte {
	if len(in) < 2 || in[0] != 0x1f || in[1] != 0x8b {
		return in
	}
	zr, err := gzip.NewReader(bytes.NewReader(in))
	if err != nil {
		t.Fatalf("reader accepted gzip input that gzip rejects: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("reader accepted gzip input that gzip rejects: %v", err)
	}
	return out
}

// checkFuzzError requires a format error naming the input: with an
// in-memory reader there is no other kind of failure.
func checkFuzzError(t *testing.T, err error) {
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "data: fuzz: ") {
		t.Fatalf("got %T %q, want a *FormatError for \"fuzz\"", err, err)
	}
}

// allocLimit is what reading in may allocate: the buffers of bufio and
// gzip and the reader's first chunk, plus a few times the IDX bytes really
// present (the payload buffer grows by doubling), plus, when the input's
// size is known, what a gzip stream of that size could expand to, since
// the reader allocates once when the gzip trailer backs the header's claim.
// A header that lies about its size must cost no more.
func allocLimit(in []byte, sized bool) uint64 {
	n := uint64(len(in))
	if len(in) >= 2 && in[0] == 0x1f && in[1] == 0x8b {
		n = 0
		if zr, err := gzip.NewReader(bytes.NewReader(in)); err == nil {
			m, _ := io.Copy(io.Discard, zr) // what arrives before any error
			n = uint64(m)
		}
		if sized {
			n += maxDeflateRatio * uint64(len(in))
		}
	}
	return 2*firstChunk + 4*n
}

func checkAllocs(t *testing.T, what string, got, limit uint64, in []byte) {
	if got > limit {
		t.Fatalf("%s allocated %d bytes for %d input bytes (limit %d)", what, got, len(in), limit)
	}
}

// FuzzReadImages checks that the image reader never panics, fails only
// with a *FormatError, that its two paths (input size known or not) agree,
// that neither allocates more than the input justifies, and that whatever
// it accepts re-encodes to the same bytes.
func FuzzReadImages(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var m, m2 *Images
		var err, err2 error
		a := testutil.Allocated(func() { m, err = ReadImages(bytes.NewReader(in), "fuzz") })
		checkAllocs(t, "ReadImages", a, allocLimit(in, false), in)
		a = testutil.Allocated(func() { m2, err2 = ReadOptions{}.readImages(bytes.NewReader(in), "fuzz", int64(len(in))) })
		checkAllocs(t, "readImages with the size known", a, allocLimit(in, true), in)
		// The sized path may refuse a gzip file sooner, with its own words.
		if (err == nil) != (err2 == nil) || !equalImages(m, m2) {
			t.Fatalf("sized and streaming reads disagree: %v vs %v", err, err2)
		}
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if err := m.check(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteImages(&buf, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), decoded(t, in)) {
			t.Fatal("accepted input does not re-encode to itself")
		}
	})
}

// FuzzReadLabels is FuzzReadImages for label files.
func FuzzReadLabels(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var labels, labels2 []byte
		var err, err2 error
		a := testutil.Allocated(func() { labels, err = ReadLabels(bytes.NewReader(in), "fuzz") })
		checkAllocs(t, "ReadLabels", a, allocLimit(in, false), in)
		a = testutil.Allocated(func() {
			_, labels2, err2 = ReadOptions{}.readIDX(bytes.NewReader(in), "fuzz", labelsMagic, int64(len(in)))
		})
		checkAllocs(t, "readIDX with the size known", a, allocLimit(in, true), in)
		if (err == nil) != (err2 == nil) || !bytes.Equal(labels, labels2) {
			t.Fatalf("sized and streaming reads disagree: %v vs %v", err, err2)
		}
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		var buf bytes.Buffer
		if err := WriteLabels(&buf, labels); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), decoded(t, in)) {
			t.Fatal("accepted input does not re-encode to itself")
		}
	})
}

// FuzzReadImagesGzip feeds the reader the gzip compression of the fuzzed
// bytes, so that the fuzzer explores IDX headers and payloads behind gzip
// (where sizes are not known in advance) instead of breaking the CRC. The
// gzip'd reading must agree with the raw reading of the same bytes, fail
// only with a *FormatError, and allocate no more than the bytes present
// justify; a header claiming more than the limit or than the compressed
// size can expand to (a gzip bomb) must cost nothing.
func FuzzReadImagesGzip(f *testing.F) {
	addSeeds(f)
	f.Add(idxHeader(imagesMagic, 60_000_000, 28, 28))                                // the bomb's claim
	f.Add(append(idxHeader(imagesMagic, 5_000_000, 28, 28), make([]byte, 1<<12)...)) // 5M blank images, cut
	f.Add(append(idxHeader(imagesMagic, 1, 1<<12, 1<<12), make([]byte, 1<<16)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := gz(raw)
		var m, m2 *Images
		var err, err2 error
		a := testutil.Allocated(func() { m, err = ReadImages(bytes.NewReader(in), "fuzz") })
		checkAllocs(t, "ReadImages of gzip", a, allocLimit(in, false), in)
		a = testutil.Allocated(func() { m2, err2 = ReadOptions{}.readImages(bytes.NewReader(in), "fuzz", int64(len(in))) })
		checkAllocs(t, "readImages of gzip with the size known", a, allocLimit(in, true), in)
		if (err == nil) != (err2 == nil) || !equalImages(m, m2) {
			t.Fatalf("sized and streaming reads disagree: %v vs %v", err, err2)
		}
		if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
			m3, err3 := ReadImages(bytes.NewReader(raw), "fuzz")
			if (err == nil) != (err3 == nil) || !equalImages(m, m3) {
				t.Fatalf("gzip'd and raw reads disagree: %v vs %v", err, err3)
			}
		}
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		var buf bytes.Buffer
		if err := WriteImages(&buf, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), raw) {
			t.Fatal("accepted input does not re-encode to itself")
		}
	})
}
