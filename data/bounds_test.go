package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/internal/testutil"
)

// bombFile writes a gzip'd IDX image file whose header claims n images of
// 28x28, followed by the given number of zero bytes.
func bombFile(t *testing.T, n uint32, zeros int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bomb.idx.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	zw.Write(idxHeader(imagesMagic, n, 28, 28))
	io.Copy(zw, io.LimitReader(zeroReader{}, zeros))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A gzip bomb claiming 6e7 images is refused from its header, at no cost:
// its claim is over the limit, and more than its compressed size could
// expand to.
func TestGzipBombRefused(t *testing.T) {
	path := bombFile(t, 60_000_000, 4<<20) // the bomb's head: its tail is never read
	var err error
	a := testutil.Allocated(func() { _, err = ReadImagesFile(path) })
	checkFormatError(t, err, path, "header claims 60000000 images of 28x28, 47040000000 bytes, over the limit of 2147483648 bytes", false)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("errors.Is(err, ErrTooLarge) = false: %v", err)
	}
	if a > 1<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", a)
	}
	// Under a raised limit the compressed size still gives it away.
	_, err = ReadOptions{MaxBytes: -1}.ReadImagesFile(path)
	checkFormatError(t, err, path, "but ", true)
	if !strings.Contains(err.Error(), "compressed bytes expand to at most") {
		t.Errorf("got %v", err)
	}
}

// A valid file of 5 million blank images (3.9 GB decompressed) is refused
// before its data is read: it is streamed from a generator, which the
// reader stops consuming after the header.
func TestFiveMillionBlankImagesRefused(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		zw.Write(idxHeader(imagesMagic, 5_000_000, 28, 28))
		_, err := io.Copy(zw, io.LimitReader(zeroReader{}, 5_000_000*784))
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	var err error
	a := testutil.Allocated(func() { _, err = ReadImages(pr, "blank.idx.gz") })
	pr.Close()
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "5000000 images of 28x28, 3920000000 bytes, over the limit") {
		t.Fatalf("got %v", err)
	}
	if a > 4<<20 {
		t.Errorf("refusing allocated %d bytes", a)
	}
}

// The limit is an option and an environment variable.
func TestMaxBytes(t *testing.T) {
	dir := t.TempDir()
	tinySet{trainN: 5, testN: 3}.write(t, dir, ".gz") // 80 training bytes
	isolate(t)
	if _, err := Load("x", LoadOptions{Dir: dir, MaxBytes: 80}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := Load("x", LoadOptions{Dir: dir, MaxBytes: 79})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "header claims 5 images of 4x4, 80 bytes, over the limit of 79 bytes") {
		t.Fatalf("got %v", err)
	}
	t.Setenv(EnvMaxBytes, "79")
	if _, err := Load("x", LoadOptions{Dir: dir}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("with %s=79: %v", EnvMaxBytes, err)
	}
	t.Setenv(EnvMaxBytes, "lots")
	if _, err := Load("x", LoadOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), `GOVAE_DATA_MAX_BYTES="lots"`) {
		t.Fatalf("got %v", err)
	}
}

// Reading stops promptly on cancellation, even from a source that never
// ends, and says why.
func TestReadCancelled(t *testing.T) {
	// A raw stream claiming 2 million images (1.5 GB), read from an
	// endless generator: only cancellation stops it early.
	src := io.MultiReader(bytes.NewReader(idxHeader(imagesMagic, 2_000_000, 28, 28)), zeroReader{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := ReadOptions{Context: ctx}.ReadImages(src, "endless")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}

	// LoadContext with a cancelled context reads nothing.
	dir := t.TempDir()
	tinySet{trainN: 5, testN: 3}.write(t, dir, "")
	if _, err := LoadContext(ctx, "x", LoadOptions{Dir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("LoadContext: %v", err)
	}
}

// A download that stalls is given up after the idle timeout, leaves no
// file behind, and a cancelled context stops one at once.
func TestDownloadIdleTimeout(t *testing.T) {
	isolate(t)
	mf := withTinySpec(t, tinySet{trainN: 300, testN: 2})
	srv, _ := newMirror(t, mf)
	cache := t.TempDir()
	start := time.Now()
	_, err := Load("tiny", LoadOptions{CacheDir: cache, Mirrors: []string{srv.URL + "/stall/"}, IdleTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no data for 200ms (idle timeout)") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
	if got := dirNames(t, filepath.Join(cache, "tiny")); len(got) != 0 {
		t.Errorf("cache holds %v after a stalled download", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = LoadContext(ctx, "tiny", LoadOptions{CacheDir: cache, Mirrors: []string{srv.URL + "/stall/", srv.URL + "/good/"}, IdleTimeout: time.Hour})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled download: %v", err)
	}
	if got := dirNames(t, filepath.Join(cache, "tiny")); len(got) != 0 {
		t.Errorf("cache holds %v after a cancelled download", got)
	}
}

// -data-dir is the only place searched: a folder without the files is an
// error listing what is missing, and nothing is downloaded.
func TestExplicitDirNeverDownloads(t *testing.T) {
	isolate(t)
	mf := withTinySpec(t, tinySet{trainN: 3, testN: 2})
	srv, hits := newMirror(t, mf)
	t.Setenv(EnvMirrors, srv.URL+"/good/")
	env := t.TempDir()
	t.Setenv(EnvData, env)
	tinySet{trainN: 3, testN: 2}.write(t, filepath.Join(env, "tiny"), "") // would do, but is not asked for
	dir := t.TempDir()
	tinySet{trainN: 3, testN: 2}.write(t, dir, ".gz")
	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	_, err := Load("tiny", LoadOptions{Dir: dir})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		`dataset "tiny" not found in the -data-dir folder`,
		dir + " (-data-dir): missing t10k-labels-idx1-ubyte[.gz]",
		filepath.Join(dir, "tiny") + " (-data-dir): does not exist",
		"nothing else is searched and nothing is downloaded",
		"CIFAR-10 binary batches",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(hits()) != 0 {
		t.Errorf("requests made: %v", hits())
	}
	// An empty folder says what each kind of folder would need.
	_, err = Load("tiny", LoadOptions{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (IDX); no data_batch_*.bin (CIFAR-10); no .png, .jpg or .jpeg images (image folder)") {
		t.Errorf("got %v", err)
	}
}

// A data file that is a directory is called one, not "missing".
func TestDataFileIsDirectory(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	tinySet{trainN: 3, testN: 2}.write(t, dir, ".gz")
	p := filepath.Join(dir, "train-images-idx3-ubyte.gz")
	os.Remove(p)
	os.Mkdir(p, 0o755)
	_, err := Load("x", LoadOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz is a directory, want a data file") || strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v", err)
	}
	_, err = ReadImagesFile(p)
	checkFormatError(t, err, p, "is a directory, want a data file", false)
}

// A dataset without images has its own error, naming the file.
func TestZeroImages(t *testing.T) {
	for _, split := range []string{"train", "t10k"} {
		dir := t.TempDir()
		set := tinySet{trainN: 3, testN: 2}
		if split == "train" {
			set.trainN = 0
		} else {
			set.testN = 0
		}
		set.write(t, dir, "")
		_, err := LoadDir(dir)
		p := filepath.Join(dir, split+"-images-idx3-ubyte")
		checkFormatError(t, err, p, "holds 0 images; the", false)
		if !errors.Is(err, ErrNoImages) {
			t.Errorf("%s: errors.Is(err, ErrNoImages) = false", split)
		}
	}
}

// TestDirSourceLabel: a folder a tool takes from a checkpoint, not from a
// flag, is credited as such in the description and in errors.
func TestDirSourceLabel(t *testing.T) {
	dir := t.TempDir()
	tinySet{trainN: 3, testN: 2}.write(t, dir, "")
	var log strings.Builder
	ds, err := Load("tiny", LoadOptions{Dir: dir, DirSource: SourceRun, Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Source != SourceRun || !strings.Contains(log.String(), "("+SourceRun+")") || strings.Contains(log.String(), "-data-dir") {
		t.Errorf("source %q, progress %q: want the training run's folder, not -data-dir", ds.Source, log.String())
	}
	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte"))
	_, err = Load("tiny", LoadOptions{Dir: dir, DirSource: SourceRun})
	for _, want := range []string{"not found in the " + SourceRun + " folder", dir + " (" + SourceRun + "): missing", "-data-dir names another"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
