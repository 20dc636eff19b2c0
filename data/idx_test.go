package data

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readBoth reads a testdata file through both reader paths: from the file
// (whose size is known, so the header is checked before allocating) and
// from a plain io.Reader (which grows its buffer as data arrives). They must
// agree exactly.
func readBoth(t *testing.T, name string, images bool) (m *Images, labels []uint8, err error) {
	t.Helper()
	m, labels, err, err2 := readBoth2(t, name, images)
	if errString(err) != errString(err2) {
		t.Fatalf("file and stream readers disagree:\n file:   %v\n stream: %v", err, err2)
	}
	return m, labels, err
}

// readBoth2 is readBoth for inputs the file reader may refuse sooner (a
// gzip file too small to expand to what its header claims): both must
// fail or agree on the data.
func readBoth2(t *testing.T, name string, images bool) (m *Images, labels []uint8, err, err2 error) {
	t.Helper()
	path := filepath.Join(testdataDir, name)
	raw, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var m2 *Images
	var labels2 []uint8
	if images {
		m, err = ReadImagesFile(path)
		m2, err2 = ReadImages(iotest.HalfReader(bytes.NewReader(raw)), path)
	} else {
		labels, err = ReadLabelsFile(path)
		labels2, err2 = ReadLabels(iotest.HalfReader(bytes.NewReader(raw)), path)
	}
	if (err == nil) != (err2 == nil) {
		t.Fatalf("file and stream readers disagree:\n file:   %v\n stream: %v", err, err2)
	}
	if err == nil && (!equalImages(m, m2) || !bytes.Equal(labels, labels2)) {
		t.Fatalf("file and stream readers return different data")
	}
	return m, labels, err, err2
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func equalImages(a, b *Images) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.N == b.N && a.Channels == b.Channels && a.Rows == b.Rows && a.Cols == b.Cols && bytes.Equal(a.Pix, b.Pix)
}

func TestReadImagesTestdata(t *testing.T) {
	want := &Images{N: 2, Channels: 1, Rows: 3, Cols: 2, Pix: seq(12)}
	tests := []struct {
		file      string
		want      *Images
		err       string // substring of the message after "data: <path>: "
		truncated bool
		fileErr   string // the file reader's message, when it differs
	}{
		{file: "images-2x3x2.idx", want: want},
		{file: "images-2x3x2.idx.gz", want: want},
		{file: "images-empty.idx", want: &Images{N: 0, Channels: 1, Rows: 28, Cols: 28, Pix: []uint8{}}},
		{file: "labels-3.idx", err: "magic 0x00000801 (an IDX label file), want 0x00000803"},
		{file: "labels-3.idx.gz", err: "magic 0x00000801 (an IDX label file), want 0x00000803"},
		{file: "not-idx.txt", err: "magic 0x74686973 (not an IDX file), want 0x00000803"},
		{file: "images-truncated-header.idx", err: "header truncated: got 10 of 16 bytes", truncated: true},
		{file: "images-truncated-pixels.idx", err: "truncated: got 5 of 12 data bytes for 2 images of 3x2", truncated: true},
		{file: "images-trailing.idx", err: "3 trailing bytes after 2 images of 3x2"},
		{file: "images-overflow.idx", err: "header claims 4294967295 images of 4294967295x4294967295: the byte count overflows"},
		{file: "images-huge-count.idx", err: "truncated: got 1 of 2147483648 data bytes for 2147483648 images of 1x1", truncated: true},
		{file: "images-huge-count.idx.gz", err: "truncated: got 1 of 2147483648 data bytes for 2147483648 images of 1x1", truncated: true,
			fileErr: "header claims 2147483648 images of 1x1, 2147483648 bytes, but 35 compressed bytes expand to at most 36120"},
		{file: "images-lying-isize.idx.gz", err: "corrupt gzip data: gzip: invalid checksum",
			fileErr: "header claims 2147483648 images of 1x1, 2147483648 bytes, but 35 compressed bytes expand to at most 36120"},
		{file: "images-zero-cols.idx", err: "image size 28x0, want both dimensions > 0"},
		{file: "images-truncated.idx.gz", err: "truncated", truncated: true},
		{file: "images-bad-crc.idx.gz", err: "corrupt gzip data: gzip: invalid checksum"},
		{file: "images-gzip-trailing-junk.idx.gz", err: "corrupt gzip data: gzip: invalid header"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if tt.fileErr != "" {
				_, _, err, err2 := readBoth2(t, tt.file, true)
				checkFormatError(t, err, filepath.Join(testdataDir, tt.file), tt.fileErr, true)
				checkFormatError(t, err2, filepath.Join(testdataDir, tt.file), tt.err, tt.truncated)
				return
			}
			m, _, err := readBoth(t, tt.file, true)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !equalImages(m, tt.want) {
					t.Fatalf("got %+v, want %+v", m, tt.want)
				}
				return
			}
			checkFormatError(t, err, filepath.Join(testdataDir, tt.file), tt.err, tt.truncated)
		})
	}
}

func TestReadLabelsTestdata(t *testing.T) {
	tests := []struct {
		file      string
		want      []uint8
		err       string
		truncated bool
	}{
		{file: "labels-3.idx", want: []uint8{7, 0, 9}},
		{file: "labels-3.idx.gz", want: []uint8{7, 0, 9}},
		{file: "images-2x3x2.idx", err: "magic 0x00000803 (an IDX image file), want 0x00000801"},
		{file: "labels-truncated.idx", err: "truncated: got 2 of 3 data bytes for 3 labels", truncated: true},
		{file: "not-idx.txt", err: "want 0x00000801"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, labels, err := readBoth(t, tt.file, false)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(labels, tt.want) {
					t.Fatalf("got %v, want %v", labels, tt.want)
				}
				return
			}
			checkFormatError(t, err, filepath.Join(testdataDir, tt.file), tt.err, tt.truncated)
		})
	}
}

func checkFormatError(t *testing.T, err error, file, msg string, truncated bool) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("got %T %v, want a *FormatError", err, err)
	}
	if fe.File != file {
		t.Errorf("File = %q, want %q", fe.File, file)
	}
	if prefix := "data: " + file + ": "; !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q, want %q followed by %q", err, prefix, msg)
	}
	if got := errors.Is(err, io.ErrUnexpectedEOF); got != truncated {
		t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v", got, truncated)
	}
}

// A header that claims 2^31 images must not cost gigabytes: memory follows
// what the input holds.
func TestReadHugeClaimAllocatesLittle(t *testing.T) {
	for _, name := range []string{"images-huge-count.idx", "images-huge-count.idx.gz", "images-lying-isize.idx.gz"} {
		raw, err := os.ReadFile(filepath.Join(testdataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			how  string
			read func() error
		}{
			{"file", func() error { _, err := ReadImagesFile(filepath.Join(testdataDir, name)); return err }},
			{"stream", func() error { _, err := ReadImages(bytes.NewReader(raw), name); return err }},
		} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := r.read()
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("%s %s: no error", name, r.how)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("%s %s: allocated %d bytes for a 2 GiB claim", name, r.how, got)
			}
		}
	}
}

// An I/O error from the underlying reader is passed on, not disguised as a
// format problem.
func TestReadImagesIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	raw := append(idxHeader(imagesMagic, 2, 3, 2), 1, 2, 3)
	_, err := ReadImages(io.MultiReader(bytes.NewReader(raw), iotest.ErrReader(boom)), "x")
	var fe *FormatError
	if !errors.Is(err, boom) || errors.As(err, &fe) {
		t.Fatalf("got %v, want the reader's error unwrapped as is", err)
	}
}

func TestReadImagesFileMissing(t *testing.T) {
	_, err := ReadImagesFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "data: ") {
		t.Fatalf("got %v", err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, tt := range []struct{ n, rows, cols int }{{0, 28, 28}, {1, 1, 1}, {5, 28, 28}, {3, 7, 11}, {2000, 28, 28}} {
		m := &Images{N: tt.n, Channels: 1, Rows: tt.rows, Cols: tt.cols, Pix: make([]uint8, tt.n*tt.rows*tt.cols)}
		for i := range m.Pix {
			m.Pix[i] = uint8(r.IntN(256))
		}
		labels := make([]uint8, tt.n)
		for i := range labels {
			labels[i] = uint8(r.IntN(10))
		}
		for _, ext := range []string{"", ".gz"} {
			ip, lp := filepath.Join(dir, "img"+ext), filepath.Join(dir, "lbl"+ext)
			if err := WriteImagesFile(ip, m); err != nil {
				t.Fatal(err)
			}
			if err := WriteLabelsFile(lp, labels); err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 2)
			f, _ := os.Open(ip)
			f.Read(head)
			f.Close()
			if isGz := head[0] == 0x1f && head[1] == 0x8b; isGz != (ext == ".gz") {
				t.Errorf("%s: gzip = %v", ip, isGz)
			}
			got, err := ReadImagesFile(ip)
			if err != nil {
				t.Fatal(err)
			}
			if !equalImages(got, m) {
				t.Errorf("%v%s: images differ after a round trip", tt, ext)
			}
			gotL, err := ReadLabelsFile(lp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotL, labels) {
				t.Errorf("%v%s: labels differ after a round trip", tt, ext)
			}
		}
	}
}

func TestWriteImagesRejectsInconsistent(t *testing.T) {
	for _, m := range []*Images{
		nil,
		{N: 2, Rows: 2, Cols: 2, Pix: make([]uint8, 7)},
		{N: -1, Rows: 2, Cols: 2},
		{N: 1, Rows: 0, Cols: 2},
	} {
		if err := WriteImages(io.Discard, m); err == nil {
			t.Errorf("WriteImages(%+v) succeeded", m)
		}
	}
}

func TestImagesHelpers(t *testing.T) {
	m := &Images{N: 3, Channels: 1, Rows: 1, Cols: 2, Pix: []uint8{0, 255, 51, 102, 7, 8}}
	if m.Dim() != 2 {
		t.Fatalf("Dim = %d", m.Dim())
	}
	if got := m.Image(1); !slices.Equal(got, []uint8{51, 102}) {
		t.Errorf("Image(1) = %v", got)
	}
	f := m.Float32()
	if f[0] != 0 || f[1] != 1 || f[2] != 0.2 || f[3] != 0.4 {
		t.Errorf("Float32 = %v", f)
	}
	s := m.Subset([]int{2, 0, 2})
	if want := (&Images{N: 3, Channels: 1, Rows: 1, Cols: 2, Pix: []uint8{7, 8, 0, 255, 7, 8}}); !equalImages(s, want) {
		t.Errorf("Subset = %+v, want %+v", s, want)
	}
	s.Pix[0] = 99
	if m.Pix[4] != 7 {
		t.Error("Subset shares memory with the original")
	}
}

// A gzip file whose trailer agrees with its header is read into one
// allocation of the right size, not grown step by step.
func TestReadGzipPresized(t *testing.T) {
	m := randomImages(9, 3000, 28, 28) // 2.35 MB, past the first growth step
	path := filepath.Join(t.TempDir(), "img.gz")
	if err := WriteImagesFile(path, m); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := ReadImagesFile(path)
	runtime.ReadMemStats(&after)
	if err != nil || !equalImages(got, m) {
		t.Fatalf("read back: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(m.Pix))*5/4 {
		t.Errorf("allocated %d bytes for %d pixels", alloc, len(m.Pix))
	}
}

func TestImagesVectors(t *testing.T) {
	m := &Images{N: 3, Channels: 1, Rows: 1, Cols: 2, Pix: []uint8{0, 255, 51, 102, 1, 2}}
	rows := m.Vectors(2)
	if len(rows) != 2 || rows[0][1] != 1 || rows[1][0] != 0.2 || rows[1][1] != 0.4 {
		t.Fatalf("Vectors(2) = %v", rows)
	}
	if all := m.Vectors(0); len(all) != 3 || all[2][0] != 1.0/255 {
		t.Fatalf("Vectors(0) = %v", all)
	}
	if big := m.Vectors(10); len(big) != 3 {
		t.Fatalf("Vectors(10) has %d rows, want 3", len(big))
	}
}
