package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The small IDX files in testdata/idx seed the fuzz targets and drive the
// reader's table tests. They are generated here; after changing a generator,
// run: go test ./data -run TestTestdata -update
var update = flag.Bool("update", false, "rewrite testdata/idx from its generators")

const testdataDir = "testdata/idx"

// idxHeader builds an IDX header: magic then dimensions, big-endian.
func idxHeader(magic uint32, dims ...uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// seq returns n bytes 0, 1, 2, ... scaled to cover 0..255.
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 255 / max(n-1, 1))
	}
	return b
}

// testdataFiles returns every file of testdata/idx by name.
func testdataFiles() map[string][]byte {
	images := append(idxHeader(imagesMagic, 2, 3, 2), seq(12)...)
	labels := append(idxHeader(labelsMagic, 3), 7, 0, 9)
	huge := append(idxHeader(imagesMagic, 1<<31, 1, 1), 42)
	badCRC := gz(images)
	badCRC[len(badCRC)-8] ^= 0xff // first byte of the CRC-32 trailer
	gzImages := gz(images)
	// A gzip trailer whose ISIZE backs the header's 2^31-image claim; the
	// compressed size cannot back it, so the reader must not trust it.
	lyingISIZE := gz(huge)
	binary.LittleEndian.PutUint32(lyingISIZE[len(lyingISIZE)-4:], 16+1<<31)
	return map[string][]byte{
		"images-2x3x2.idx":                 images,
		"images-2x3x2.idx.gz":              gzImages,
		"images-empty.idx":                 idxHeader(imagesMagic, 0, 28, 28),
		"images-truncated-header.idx":      images[:10],
		"images-truncated-pixels.idx":      images[:16+5],
		"images-trailing.idx":              append(slices.Clone(images), 1, 2, 3),
		"images-overflow.idx":              idxHeader(imagesMagic, 0xffffffff, 0xffffffff, 0xffffffff),
		"images-huge-count.idx":            huge,
		"images-huge-count.idx.gz":         gz(huge),
		"images-lying-isize.idx.gz":        lyingISIZE,
		"images-zero-cols.idx":             idxHeader(imagesMagic, 1, 28, 0),
		"images-truncated.idx.gz":          gzImages[:len(gzImages)-12],
		"images-bad-crc.idx.gz":            badCRC,
		"images-gzip-trailing-junk.idx.gz": append(slices.Clone(gzImages), "not another gzip member"...),
		"labels-3.idx":                     labels,
		"labels-3.idx.gz":                  gz(labels),
		"labels-truncated.idx":             labels[:10],
		"not-idx.txt":                      []byte("this is not an IDX file\n"),
	}
}

// TestTestdata keeps testdata/idx in step with its generators. The gzip
// files are compared after decompression where possible, because the
// compressed bytes may change with the Go release.
func TestTestdata(t *testing.T) {
	files := testdataFiles()
	if *update {
		if err := os.MkdirAll(testdataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(testdataDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(testdataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("%s/%s has no generator; remove it or add one", testdataDir, e.Name())
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(testdataDir, name))
		if err != nil {
			t.Errorf("%v (run with -update)", err)
			continue
		}
		if strings.HasSuffix(name, ".gz") {
			got, want = gunzipLoose(got), gunzipLoose(want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its generator (run with -update)", name)
		}
	}
}

// gunzipLoose decompresses as much of b as decodes.
func gunzipLoose(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	var out bytes.Buffer
	out.ReadFrom(zr)
	return out.Bytes()
}
