package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// mirrorFiles is what a fake mirror serves, by base file name: the .gz
// body, the raw content, and a well-formed .gz of different content.
type mirrorFiles struct {
	gz, raw, wrong map[string][]byte
}

// withTinySpec registers a downloadable dataset "tiny" made of set, and
// returns what its mirrors should serve.
func withTinySpec(t *testing.T, set tinySet) *mirrorFiles {
	t.Helper()
	mf := &mirrorFiles{gz: map[string][]byte{}, raw: map[string][]byte{}, wrong: map[string][]byte{}}
	sp := &spec{name: "tiny"}
	imgs, labels := set.files()
	other, otherLabels := tinySet{trainN: set.trainN + 1, testN: set.testN + 1}.files()
	for role, base := range fileNames {
		var raw, wrong bytes.Buffer
		if imgs[role] != nil {
			WriteImages(&raw, imgs[role])
			WriteImages(&wrong, other[role])
		} else {
			WriteLabels(&raw, labels[role])
			WriteLabels(&wrong, otherLabels[role])
		}
		sum := sha256.Sum256(raw.Bytes())
		sp.sha256[role] = hex.EncodeToString(sum[:])
		mf.raw[base], mf.gz[base], mf.wrong[base] = raw.Bytes(), gz(raw.Bytes()), gz(wrong.Bytes())
	}
	old := datasets
	datasets = append(slices.Clip(old), sp)
	t.Cleanup(func() { datasets = old })
	return mf
}

// newMirror serves files under /<mode>/<name>.gz, where mode says how:
// good, 500 (server error), wrong (bad checksum), short (body cut short
// of its Content-Length), cutgz (a complete HTTP body holding half a gzip
// stream), badcrc (a gzip stream failing its CRC) or raw (uncompressed
// content). It returns the paths requested.
func newMirror(t *testing.T, files *mirrorFiles) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		mode, file, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		base, isGz := strings.CutSuffix(file, ".gz")
		body, ok := []byte(nil), false
		if files != nil && isGz {
			body, ok = files.gz[base]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch mode {
		case "good":
			w.Write(body)
		case "500":
			http.Error(w, "mirror down", http.StatusInternalServerError)
		case "wrong":
			w.Write(files.wrong[base])
		case "short":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
		case "cutgz":
			w.(http.Flusher).Flush() // chunked: the body itself ends cleanly
			w.Write(body[:len(body)/2])
		case "raw":
			w.Write(files.raw[base])
		case "stall": // half the body, then silence until the client leaves
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "badcrc":
			b := slices.Clone(body)
			b[len(b)-8] ^= 0xff
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hits)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDownload(t *testing.T) {
	set := tinySet{trainN: 6, testN: 4}
	gzNames := []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
	rawNames := []string{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"}
	tests := []struct {
		name    string
		mirrors []string // modes, in order
		stored  []string // files in the cache afterwards; nil for a failure
		errs    []string // in the error, for a failure
	}{
		{"good", []string{"good"}, gzNames, nil},
		{"server error, next mirror", []string{"500", "good"}, gzNames, nil},
		{"every failure, then good", []string{"wrong", "short", "cutgz", "500", "good"}, gzNames, nil},
		{"raw content", []string{"raw"}, rawNames, nil},
		{"wrong checksum", []string{"wrong"}, nil, []string{"checksum mismatch: SHA-256 of the"}},
		{"cut short", []string{"short"}, nil, []string{"/short/train-images-idx3-ubyte.gz: download broken off after", "unexpected EOF"}},
		{"half a gzip stream", []string{"cutgz"}, nil, []string{"/cutgz/train-images-idx3-ubyte.gz: download broken off after 26 bytes: unexpected EOF"}},
		{"corrupt gzip", []string{"badcrc"}, nil, []string{"corrupt gzip data within", "gzip: invalid checksum"}},
		{"all fail", []string{"500", "wrong"}, nil, []string{
			"/500/train-images-idx3-ubyte.gz: HTTP 500 Internal Server Error",
			"/wrong/train-images-idx3-ubyte.gz: checksum mismatch",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			files := withTinySpec(t, set)
			srv, hits := newMirror(t, files)
			var mirrors []string
			for _, m := range tt.mirrors {
				mirrors = append(mirrors, srv.URL+"/"+m+"/")
			}
			cache := t.TempDir()
			var progress bytes.Buffer
			ds, err := Load("tiny", LoadOptions{CacheDir: cache, Mirrors: mirrors, Progress: &progress})
			dir := filepath.Join(cache, "tiny")
			got := dirNames(t, dir)
			if tt.stored == nil {
				var nf *NotFoundError
				if !errors.As(err, &nf) || nf.Err == nil {
					t.Fatalf("got %T %v, want *NotFoundError with a download error", err, err)
				}
				if testing.Verbose() && tt.name == "all fail" {
					t.Logf("error:\n%v", err)
				}
				for _, want := range tt.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q:\n%v", want, err)
					}
				}
				// The first file failed on every mirror: nothing, not even
				// a temporary file, may remain.
				if len(got) != 0 {
					t.Errorf("cache holds %v after a failed download", got)
				}
				if n := len(hits()); n != len(tt.mirrors) {
					t.Errorf("%d requests, want one per mirror: %v", n, hits())
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nprogress:\n%s", err, progress.String())
			}
			checkTiny(t, ds, set)
			if ds.Source != SourceDownload || ds.Dir != dir {
				t.Errorf("Source, Dir = %q, %q", ds.Source, ds.Dir)
			}
			if !slices.Equal(got, tt.stored) {
				t.Errorf("cache holds %v, want %v", got, tt.stored)
			}
			if n := len(hits()); n != 4*len(tt.mirrors) {
				t.Errorf("%d requests, want %d: %v", n, 4*len(tt.mirrors), hits())
			}
			if testing.Verbose() && tt.name == "every failure, then good" {
				t.Logf("progress:\n%s", progress.String())
			}
			out := progress.String()
			for _, want := range []string{"data: downloading " + srv.URL + "/" + tt.mirrors[0] + "/train-images-idx3-ubyte.gz", "checksum ok"} {
				if !strings.Contains(out, want) {
					t.Errorf("progress lacks %q:\n%s", want, out)
				}
			}

			// Now cached: found there, with no further request.
			before := len(hits())
			ds, err = Load("tiny", LoadOptions{CacheDir: cache, Mirrors: mirrors})
			if err != nil || ds.Source != SourceCache || len(hits()) != before {
				t.Errorf("second Load: %v, source %v, %d new requests", err, ds.Source, len(hits())-before)
			}
		})
	}
}

// Only the files the cache lacks are fetched; the default cache is
// os.UserCacheDir()/govae; $GOVAE_MIRRORS replaces the mirror list.
func TestDownloadPartialCacheEnvMirrors(t *testing.T) {
	xdg, _ := isolate(t)
	set := tinySet{trainN: 3, testN: 5}
	files := withTinySpec(t, set)
	srv, hits := newMirror(t, files)
	t.Setenv(EnvMirrors, " "+srv.URL+"/500/ ,, "+srv.URL+"/good ")
	dir := filepath.Join(xdg, "govae", "tiny")
	set.write(t, dir, "")
	os.Remove(filepath.Join(dir, "train-images-idx3-ubyte"))
	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte"))
	ds, err := Load("tiny", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkTiny(t, ds, set)
	want := []string{"/500/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz", "/500/t10k-labels-idx1-ubyte.gz", "/good/t10k-labels-idx1-ubyte.gz"}
	if got := hits(); !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestResolveMirrors(t *testing.T) {
	sp := &spec{mirrors: []string{"https://a/", "https://b/"}}
	tests := []struct {
		opt  []string
		env  string
		want []string
		err  string
	}{
		{want: sp.mirrors},
		{env: "http://x/, https://y/", want: []string{"http://x/", "https://y/"}},
		{opt: []string{"https://o/"}, env: "http://x/", want: []string{"https://o/"}},
		{env: "ftp://x/", err: `GOVAE_MIRRORS: mirror "ftp://x/" is not an http(s) URL`},
		{env: " , ", err: "GOVAE_MIRRORS lists no mirror"},
		{opt: []string{""}, err: "Mirrors option lists no mirror"},
	}
	for _, tt := range tests {
		t.Setenv(EnvMirrors, tt.env)
		got, err := resolveMirrors(sp, tt.opt)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q, %q: got %v, want error %q", tt.opt, tt.env, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q, %q: got %q, %v, want %q", tt.opt, tt.env, got, err, tt.want)
		}
	}
}

// The plain-line meter reports quarters of a download of known length.
func TestMeterLines(t *testing.T) {
	var out bytes.Buffer
	m := newMeter(&out, "http://m/f.gz")
	m.start("f.gz", 10<<20)
	for range 10 {
		m.Write(make([]byte, 1<<20))
	}
	m.done(nil, 4000)
	want := "data: downloading http://m/f.gz\n" +
		"data: f.gz: 30% (3145728 of 10485760 bytes)\n" +
		"data: f.gz: 50% (5242880 of 10485760 bytes)\n" +
		"data: f.gz: 80% (8388608 of 10485760 bytes)\n" +
		"data: f.gz: 10485760 bytes, 4000 decompressed, checksum ok\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
