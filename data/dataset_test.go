package data

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// isolate cuts Load off from the machine: no $GOVAE_DATA, no mirrors or
// offline override, a private user cache and an empty system folder.
// It returns the user cache root (XDG_CACHE_HOME) and the system folder.
func isolate(t *testing.T) (xdg, system string) {
	t.Helper()
	t.Setenv(EnvData, "")
	t.Setenv(EnvOffline, "")
	t.Setenv(EnvMirrors, "")
	t.Setenv(EnvMaxBytes, "")
	t.Setenv("GOENV", "off")
	t.Setenv("GOMODCACHE", filepath.Join(t.TempDir(), "modcache"))
	xdg = filepath.Join(t.TempDir(), "xdg")
	t.Setenv("XDG_CACHE_HOME", xdg)
	old := systemDir
	systemDir = filepath.Join(t.TempDir(), "system")
	t.Cleanup(func() { systemDir = old })
	return xdg, systemDir
}

// tinySet is a small dataset: train images i have every pixel equal to
// 10+i, test images 100+i, labels i%10; 4x4 pixels unless resized.
type tinySet struct {
	trainN, testN, rows, cols int
}

func (s tinySet) files() (imgs [4]*Images, labels [4][]uint8) {
	rows, cols := orDefault(s.rows, 4), orDefault(s.cols, 4)
	mk := func(n, base int) (*Images, []uint8) {
		m := &Images{N: n, Channels: 1, Rows: rows, Cols: cols, Pix: make([]uint8, n*rows*cols)}
		l := make([]uint8, n)
		for i := range n {
			for j := range m.Dim() {
				m.Pix[i*m.Dim()+j] = uint8(base + i)
			}
			l[i] = uint8(i % 10)
		}
		return m, l
	}
	imgs[trainImages], labels[trainLabels] = mk(s.trainN, 10)
	imgs[testImages], labels[testLabels] = mk(s.testN, 100)
	return imgs, labels
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// write puts the four files in dir under their usual names plus ext.
func (s tinySet) write(t *testing.T, dir, ext string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	imgs, labels := s.files()
	for role, base := range fileNames {
		path := filepath.Join(dir, base+ext)
		var err error
		if imgs[role] != nil {
			err = WriteImagesFile(path, imgs[role])
		} else {
			err = WriteLabelsFile(path, labels[role])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadDirNamings(t *testing.T) {
	set := tinySet{trainN: 5, testN: 3}
	tests := []struct {
		name  string
		names func(base string) string
	}{
		{"raw", func(b string) string { return b }},
		{"gzip", func(b string) string { return b + ".gz" }},
		{"dotted", func(b string) string { return strings.Replace(b, "-idx", ".idx", 1) }},
		{"dotted gzip", func(b string) string { return strings.Replace(b, "-idx", ".idx", 1) + ".gz" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			set.write(t, dir, "")
			for _, base := range fileNames {
				// Rewrite each file under the naming, gzip'd when named so.
				old := filepath.Join(dir, base)
				b, err := os.ReadFile(old)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(tt.names(base), ".gz") {
					b = gz(b)
				}
				os.Remove(old)
				if err := os.WriteFile(filepath.Join(dir, tt.names(base)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			checkTiny(t, ds, set)
			if ds.Name != filepath.Base(dir) || ds.Dir != dir {
				t.Errorf("Name, Dir = %q, %q", ds.Name, ds.Dir)
			}
			if want := filepath.Join(dir, tt.names(fileNames[testLabels])); ds.Test.LabelsPath != want {
				t.Errorf("LabelsPath = %q, want %q", ds.Test.LabelsPath, want)
			}
		})
	}
}

func checkTiny(t *testing.T, ds *Dataset, set tinySet) {
	t.Helper()
	imgs, labels := set.files()
	if !equalImages(ds.Train.Images, imgs[trainImages]) || !equalImages(ds.Test.Images, imgs[testImages]) {
		t.Errorf("images differ from those written")
	}
	if !slices.Equal(ds.Train.Labels, labels[trainLabels]) || !slices.Equal(ds.Test.Labels, labels[testLabels]) {
		t.Errorf("labels differ from those written")
	}
}

func TestLoadDirMissing(t *testing.T) {
	dir := t.TempDir()
	tinySet{trainN: 2, testN: 2}.write(t, dir, ".gz")
	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	os.Remove(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	_, err := LoadDir(dir)
	want := "data: " + dir + ": missing train-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if _, err := LoadDir(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadInconsistentFiles(t *testing.T) {
	t.Run("label count", func(t *testing.T) {
		dir := t.TempDir()
		tinySet{trainN: 5, testN: 3}.write(t, dir, "")
		if err := WriteLabelsFile(filepath.Join(dir, "train-labels-idx1-ubyte"), []uint8{1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
		_, err := LoadDir(dir)
		lp := filepath.Join(dir, "train-labels-idx1-ubyte")
		checkFormatError(t, err, lp, "4 labels, want 5 (one per image in "+filepath.Join(dir, "train-images-idx3-ubyte")+")", false)
	})
	t.Run("image size", func(t *testing.T) {
		dir := t.TempDir()
		tinySet{trainN: 5, testN: 3}.write(t, dir, "")
		if err := WriteImagesFile(filepath.Join(dir, "t10k-images-idx3-ubyte"), &Images{N: 3, Channels: 1, Rows: 2, Cols: 8, Pix: make([]uint8, 48)}); err != nil {
			t.Fatal(err)
		}
		_, err := LoadDir(dir)
		checkFormatError(t, err, filepath.Join(dir, "t10k-images-idx3-ubyte"), "images are 1x2x8, want 1x4x4", false)
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		tinySet{trainN: 5, testN: 3}.write(t, dir, "")
		p := filepath.Join(dir, "t10k-images-idx3-ubyte")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)-1], 0o644)
		_, err := LoadDir(dir)
		checkFormatError(t, err, p, "truncated: got 47 of 48 data bytes for 3 images of 4x4", true)
	})
}

// Each place in the discovery order holds a dataset with a different
// number of training images, so the one chosen shows.
func TestLoadDiscoveryOrder(t *testing.T) {
	const name = "mnist"
	tests := []struct {
		name   string
		have   []string // places holding the dataset
		source string
		trainN int
	}{
		{"explicit dir first", []string{"dir", "dirsub", "env", "cache", "system"}, SourceDir, 1},
		{"dir/<name>", []string{"dirsub", "env", "cache", "system"}, SourceDir, 2},
		{"GOVAE_DATA", []string{"env", "cache", "system"}, SourceEnv, 3},
		{"user cache", []string{"cache", "system"}, SourceCache, 4},
		{"system", []string{"system"}, SourceSystem, 5},
		{"partial folders skipped", []string{"partial-env", "system"}, SourceSystem, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xdg, system := isolate(t)
			root := t.TempDir()
			explicit := filepath.Join(root, "explicit")
			env := filepath.Join(root, "env")
			t.Setenv(EnvData, env)
			dirs := map[string]string{
				"dir":         explicit,
				"dirsub":      filepath.Join(explicit, name),
				"env":         filepath.Join(env, name),
				"partial-env": filepath.Join(env, name),
				"cache":       filepath.Join(xdg, "govae", name),
				"system":      filepath.Join(system, name),
			}
			n := map[string]int{"dir": 1, "dirsub": 2, "env": 3, "partial-env": 3, "cache": 4, "system": 5}
			for _, h := range tt.have {
				tinySet{trainN: n[h], testN: 2}.write(t, dirs[h], ".gz")
				if h == "partial-env" {
					os.Remove(filepath.Join(dirs[h], "t10k-images-idx3-ubyte.gz"))
				}
			}
			opts := LoadOptions{Offline: true}
			if tt.source == SourceDir {
				opts.Dir = explicit
			}
			ds, err := Load(name, opts)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Source != tt.source || ds.Train.Images.N != tt.trainN || ds.Name != name {
				t.Errorf("loaded %q from %s (%s) with %d images, want source %s with %d", ds.Name, ds.Dir, ds.Source, ds.Train.Images.N, tt.source, tt.trainN)
			}
		})
	}
}

// A broken file where a dataset is found is reported, not skipped in
// favour of a later place or a download.
func TestLoadCorruptFileNotSkipped(t *testing.T) {
	xdg, _ := isolate(t)
	env := t.TempDir()
	t.Setenv(EnvData, env)
	tinySet{trainN: 3, testN: 2}.write(t, filepath.Join(env, "mnist"), "")
	os.WriteFile(filepath.Join(env, "mnist", "train-labels-idx1-ubyte"), []byte("junk"), 0o644)
	tinySet{trainN: 3, testN: 2}.write(t, filepath.Join(xdg, "govae", "mnist"), "")
	_, err := Load("mnist", LoadOptions{})
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "train-labels-idx1-ubyte: magic 0x6a756e6b (not an IDX file), want 0x00000801") {
		t.Fatalf("got %v, want the format error of the broken file", err)
	}
}

func TestLoadNames(t *testing.T) {
	isolate(t)
	_, err := Load("cifar10", LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), `unknown dataset "cifar10" (known: mnist, fashion-mnist)`) {
		t.Fatalf("got %v", err)
	}
	if got := KnownDatasets(); !slices.Equal(got, []string{"mnist", "fashion-mnist"}) {
		t.Errorf("KnownDatasets = %v", got)
	}

	// Any folder works under any name with an explicit directory.
	dir := t.TempDir()
	set := tinySet{trainN: 4, testN: 2, rows: 3, cols: 5}
	set.write(t, filepath.Join(dir, "kmnist"), "")
	ds, err := Load("kmnist", LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	checkTiny(t, ds, set)
	if ds.Name != "kmnist" || ds.Source != SourceDir {
		t.Errorf("Name, Source = %q, %q", ds.Name, ds.Source)
	}

	// ... but it is neither searched elsewhere nor downloaded.
	_, err = Load("kmnist", LoadOptions{Dir: t.TempDir()})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "nothing else is searched and nothing is downloaded") {
		t.Fatalf("got %v", err)
	}
	if len(nf.Searched) != 2 {
		t.Errorf("searched %q, want the directory and its kmnist subfolder only", nf.Searched)
	}
}

func TestLoadOfflineNotFound(t *testing.T) {
	for _, how := range []string{"option", "env"} {
		t.Run(how, func(t *testing.T) {
			xdg, system := isolate(t)
			srv, hits := newMirror(t, nil)
			t.Setenv(EnvMirrors, srv.URL+"/good/")
			env := t.TempDir()
			t.Setenv(EnvData, env)
			// A partial folder is named with what it lacks.
			tinySet{trainN: 2, testN: 2}.write(t, filepath.Join(env, "fashion-mnist"), ".gz")
			os.Remove(filepath.Join(env, "fashion-mnist", "train-labels-idx1-ubyte.gz"))
			var opts LoadOptions
			if how == "option" {
				opts.Offline = true
			} else {
				t.Setenv(EnvOffline, "1")
			}
			_, err := Load("fashion-mnist", opts)
			var nf *NotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("got %T %v, want *NotFoundError", err, err)
			}
			msg := err.Error()
			for _, want := range []string{
				`data: dataset "fashion-mnist" not found; searched:`,
				filepath.Join(env, "fashion-mnist") + " ($GOVAE_DATA): missing train-labels-idx1-ubyte[.gz]",
				filepath.Join(xdg, "govae", "fashion-mnist") + " (user cache): does not exist",
				filepath.Join(system, "fashion-mnist") + " (Debian dataset package): does not exist",
				"downloading is disabled (offline)",
				"pass -data-dir DIR",
				"set GOVAE_DATA=DIR with the files in DIR/fashion-mnist/",
				"sudo apt-get install dataset-fashion-mnist",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if len(hits()) != 0 {
				t.Errorf("offline Load made requests: %v", hits())
			}
		})
	}
}

func TestLoadEnvErrors(t *testing.T) {
	isolate(t)
	t.Setenv(EnvOffline, "perhaps")
	if _, err := Load("mnist", LoadOptions{}); err == nil || !strings.Contains(err.Error(), `GOVAE_OFFLINE="perhaps"`) {
		t.Errorf("got %v", err)
	}
	t.Setenv(EnvOffline, "")
	_, err := Load("mnist", LoadOptions{Offline: true})
	if err == nil || !strings.Contains(err.Error(), "GOVAE_DATA is not set") {
		t.Errorf("got %v", err)
	}
}

func TestDescription(t *testing.T) {
	mk := func(n int) *Images { return &Images{N: n, Channels: 1, Rows: 28, Cols: 28} }
	ds := &Dataset{Name: "mnist", Dir: "/d", Source: SourceEnv, Kind: KindIDX, Train: Split{Images: mk(10000)}, Test: Split{Images: mk(10000)}}
	if got, want := ds.Description(), "MNIST (10,000-image training subset of the 60,000, 10,000 test images) of 1x28x28, idx, from /d ($GOVAE_DATA)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ds.Train.Images = mk(60000)
	ds.Verified, ds.Source, ds.SourceNote = true, SourceModule, "m@v"
	if got, want := ds.Description(), "MNIST (full: 60,000 training and 10,000 test images) of 1x28x28, idx, from /d (GoMNIST module m@v, SHA-256 verified)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ds = &Dataset{Name: "pets", Dir: "/p", Source: SourceDir, Kind: KindImageFolder, Classes: []string{"cat", "dog"},
		Train: Split{Images: &Images{N: 1234567, Channels: 3, Rows: 8, Cols: 8}}, Test: Split{Images: &Images{N: 5, Channels: 3, Rows: 8, Cols: 8}}}
	if got, want := ds.Description(), "pets (1,234,567 training and 5 test images) of 3x8x8, 2 classes, image folder, from /p (-data-dir)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestOnly reads the test split alone, the same as a full load's, of every
// kind of folder: a training file that is not even valid does not matter.
func TestLoadTestOnly(t *testing.T) {
	idx := t.TempDir()
	tinySet{trainN: 5, testN: 3}.write(t, idx, "")
	cifar := t.TempDir()
	writeCIFAR(t, cifar, map[string][]byte{"data_batch_1.bin": slices.Concat(cifarRec(3, 1), cifarRec(9, 2)), "test_batch.bin": cifarRec(7, 9)})
	folder := t.TempDir()
	for i := range 3 {
		writeImage(t, filepath.Join(folder, "train", "x"+string(rune('0'+i))+".png"), greyImage(3, 3, i))
	}
	writeImage(t, filepath.Join(folder, "test", "y.png"), greyImage(3, 3, 50))
	for _, c := range []struct{ dir, name, trainFile, desc string }{
		{idx, "mnist", "train-images-idx3-ubyte", "MNIST (3 test images; training images not read) of 1x4x4, idx"},
		{cifar, "cifar10", "data_batch_1.bin", "cifar-10 (1 test image; training images not read) of 3x32x32, 10 classes, cifar-10"},
		{folder, "", "", "(1 test image; training images not read) of 1x3x3, image folder"},
	} {
		full, err := Load(c.name, LoadOptions{Dir: c.dir})
		if err != nil {
			t.Fatal(err)
		}
		if c.trainFile != "" {
			if err := os.WriteFile(filepath.Join(c.dir, c.trainFile), []byte("not a data file"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ds, err := Load(c.name, LoadOptions{Dir: c.dir, TestOnly: true})
		if err != nil {
			t.Fatalf("%s: %v", c.dir, err)
		}
		te, want := ds.Test, full.Test
		if ds.Train.Images != nil || te.Images.N != want.Images.N || !slices.Equal(te.Images.Pix, want.Images.Pix) ||
			!slices.Equal(te.Labels, want.Labels) || !slices.Equal(te.Files, want.Files) || te.ImagesPath != want.ImagesPath {
			t.Errorf("%s: TestOnly gives train %v, test %+v; want no training images and the test split %+v", c.dir, ds.Train.Images, te, want)
		}
		if !strings.Contains(ds.Description(), c.desc) {
			t.Errorf("%s: description %q lacks %q", c.dir, ds.Description(), c.desc)
		}
	}
}
