package data

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/testutil"
)

// Tests on the real datasets read $GOVAE_DATA/<dataset>/ and are skipped
// when GOVAE_DATA is unset.
func sharedData(t testing.TB, name string) string {
	t.Helper()
	root := testutil.SkipWithoutData(t)
	dir := filepath.Join(root, name)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("GOVAE_DATA is set but: %v", err)
	}
	return dir
}

func TestSharedDatasets(t *testing.T) {
	for _, tt := range []struct {
		name          string
		train, test   int
		wantSHA256Ok  []int // roles whose content is upstream's
		wantSHA256Bad []int // roles known to differ (the MNIST training subset)
	}{
		{"mnist", 10000, 10000, []int{testImages, testLabels}, []int{trainImages, trainLabels}},
		{"fashion-mnist", 60000, 10000, []int{trainImages, trainLabels, testImages, testLabels}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := sharedData(t, tt.name)
			ds, err := Load(tt.name, LoadOptions{Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			if ds.Source != SourceEnv || ds.Dir != dir {
				t.Errorf("found in %s (%s), want %s", ds.Dir, ds.Source, dir)
			}
			for _, s := range []struct {
				split Split
				n     int
			}{{ds.Train, tt.train}, {ds.Test, tt.test}} {
				m := s.split.Images
				if m.N != s.n || m.Rows != 28 || m.Cols != 28 || len(s.split.Labels) != s.n {
					t.Fatalf("%s: %d images of %dx%d, %d labels; want %d of 28x28", s.split.ImagesPath, m.N, m.Rows, m.Cols, len(s.split.Labels), s.n)
				}
				var counts [10]int
				for _, l := range s.split.Labels {
					if l > 9 {
						t.Fatalf("%s: label %d", s.split.LabelsPath, l)
					}
					counts[l]++
				}
				for c, k := range counts {
					if k < s.n/20 {
						t.Errorf("%s: class %d has %d examples", s.split.LabelsPath, c, k)
					}
				}
			}
			sp := lookup(tt.name)
			paths := [4]string{ds.Train.ImagesPath, ds.Train.LabelsPath, ds.Test.ImagesPath, ds.Test.LabelsPath}
			for _, role := range tt.wantSHA256Ok {
				if got := contentSHA256(t, paths[role]); got != sp.sha256[role] {
					t.Errorf("%s: content SHA-256 %s, want %s", paths[role], got, sp.sha256[role])
				}
			}
			for _, role := range tt.wantSHA256Bad {
				if got := contentSHA256(t, paths[role]); got == sp.sha256[role] {
					t.Errorf("%s: the 10k subset matches the full training set's checksum", paths[role])
				}
			}
		})
	}
}

func contentSHA256(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The whole download path with the real checksums: a local mirror serving
// the real Fashion-MNIST files.
func TestDownloadRealFashionMNIST(t *testing.T) {
	dir := sharedData(t, "fashion-mnist")
	isolate(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	cache := t.TempDir()
	ds, err := Load("fashion-mnist", LoadOptions{CacheDir: cache, Mirrors: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Source != SourceDownload || ds.Train.Images.N != 60000 || ds.Test.Images.N != 10000 {
		t.Errorf("got %s with %d + %d images", ds.Source, ds.Train.Images.N, ds.Test.Images.N)
	}
}

// The MNIST training subset is not the official file: a mirror serving it
// is refused, and nothing of it stays in the cache.
func TestDownloadRealMNISTSubsetRejected(t *testing.T) {
	dir := sharedData(t, "mnist")
	isolate(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	cache := t.TempDir()
	_, err := Load("mnist", LoadOptions{CacheDir: cache, Mirrors: []string{srv.URL}})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "train-images-idx3-ubyte: no mirror served it") || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("got %v", err)
	}
	if got := dirNames(t, filepath.Join(cache, "mnist")); len(got) != 0 {
		t.Errorf("cache holds %v", got)
	}
}

// BenchmarkLoadMNISTTest reads the MNIST test set, images and labels, from
// its gzip'd IDX files.
func BenchmarkLoadMNISTTest(b *testing.B) {
	dir := sharedData(b, "mnist")
	ip := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
	lp := filepath.Join(dir, "t10k-labels-idx1-ubyte.gz")
	b.SetBytes(10000*28*28 + 10000)
	b.ReportAllocs()
	for b.Loop() {
		m, err := ReadImagesFile(ip)
		if err != nil {
			b.Fatal(err)
		}
		l, err := ReadLabelsFile(lp)
		if err != nil {
			b.Fatal(err)
		}
		if m.N != 10000 || len(l) != 10000 {
			b.Fatal("wrong size")
		}
	}
}
