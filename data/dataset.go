package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Environment variables read by Load.
const (
	// EnvData names a folder whose subfolder <dataset>/ holds the IDX files.
	EnvData = "GOVAE_DATA"
	// EnvMirrors overrides the download mirrors: comma-separated base URLs,
	// tried in order, to which the file names are appended.
	EnvMirrors = "GOVAE_MIRRORS"
	// EnvOffline, when true (1, t, true, ...), disables downloading.
	EnvOffline = "GOVAE_OFFLINE"
)

// Where Load found a dataset, as reported in Dataset.Source.
const (
	SourceDir      = "-data-dir"
	SourceEnv      = "$" + EnvData
	SourceCache    = "user cache"
	SourceSystem   = "Debian dataset package"
	SourceDownload = "download"
)

// systemDir is where Debian's dataset-* packages install their files.
// A variable so that tests can stand in for it.
var systemDir = "/usr/share/datasets"

// Split is one part (train or test) of a dataset.
type Split struct {
	Images                 *Images
	Labels                 []uint8 // one per image
	ImagesPath, LabelsPath string
}

// Dataset is a train and a test split read from one folder.
type Dataset struct {
	Name, Dir   string
	Source      string // how Dir was found: one of the Source* constants
	Train, Test Split
}

// LoadOptions says where Load looks and whether and how it downloads.
type LoadOptions struct {
	// Dir is an explicit folder (the -data-dir flag), searched first: the
	// files may be in Dir itself or in Dir/<name>.
	Dir string
	// Progress receives download progress: a bar when it is a terminal,
	// plain lines otherwise. Nil means silent.
	Progress io.Writer
	// Offline disables downloading, as does GOVAE_OFFLINE=1.
	Offline bool
	// CacheDir replaces os.UserCacheDir()/govae as the cache root; the
	// dataset lives in CacheDir/<name>.
	CacheDir string
	// Mirrors replaces $GOVAE_MIRRORS and the dataset's published mirrors.
	Mirrors []string
	// HTTPClient replaces the default client, which gives up on a server
	// that does not answer within a minute or a file that takes over
	// 30 minutes.
	HTTPClient *http.Client
}

// The four files of a dataset, under their usual names.
const (
	trainImages = iota
	trainLabels
	testImages
	testLabels
)

var fileNames = [4]string{
	trainImages: "train-images-idx3-ubyte",
	trainLabels: "train-labels-idx1-ubyte",
	testImages:  "t10k-images-idx3-ubyte",
	testLabels:  "t10k-labels-idx1-ubyte",
}

// spec describes a dataset that Load knows by name and can download.
type spec struct {
	name    string
	mirrors []string
	// sha256 of each file's decompressed content, by role. Checking the
	// content rather than the .gz lets re-compressed copies (Debian's) pass.
	sha256 [4]string
	// debian is the Debian package that installs the files, if any.
	debian string
}

var datasets = []*spec{
	{
		name: "mnist",
		mirrors: []string{
			"https://ossci-datasets.s3.amazonaws.com/mnist/",
			"https://storage.googleapis.com/cvdf-datasets/mnist/",
		},
		sha256: [4]string{
			// The training files are not on this project's machines (only a
			// subset is); these are the published SHA-256s of the official
			// decompressed files, as listed identically by several
			// independent projects, and consistent with the well-known MD5s
			// of the decompressed files (6bbc9ace898e44ae57da46a324031adb,
			// a25bea736e30d166cdddb491f175f624).
			trainImages: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
			trainLabels: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
			// Computed from the official test files, whose .gz MD5s
			// (9fb629c4..., ec29112d...) match the published ones.
			testImages: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
			testLabels: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
		},
	},
	{
		name:    "fashion-mnist",
		mirrors: []string{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"},
		// Computed from the decompressed files of Debian's
		// dataset-fashion-mnist, which are upstream's bytes.
		sha256: [4]string{
			trainImages: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
			trainLabels: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
			testImages:  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
			testLabels:  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
		},
		debian: "dataset-fashion-mnist",
	},
}

// KnownDatasets returns the names Load accepts without an explicit Dir.
func KnownDatasets() []string {
	names := make([]string, len(datasets))
	for i, d := range datasets {
		names[i] = d.name
	}
	return names
}

func lookup(name string) *spec {
	for _, d := range datasets {
		if d.name == name {
			return d
		}
	}
	return nil
}

// place is one folder Load searches, or the reason a place has no folder.
type place struct {
	source, dir, why string
}

func (p place) String() string {
	if p.dir == "" {
		return p.source + ": " + p.why
	}
	return p.dir + " (" + p.source + "): " + p.why
}

// Load finds the dataset called name and reads both of its splits. It looks,
// in order, in opts.Dir (and opts.Dir/<name>), $GOVAE_DATA/<name>, the user
// cache and /usr/share/datasets/<name>, and takes the first folder that
// holds all four files. If none does it downloads the files into the user
// cache, unless offline. A name Load does not know is accepted with an
// explicit opts.Dir, which is then the only place searched.
func Load(name string, opts LoadOptions) (*Dataset, error) {
	sp := lookup(name)
	if sp == nil && opts.Dir == "" {
		return nil, fmt.Errorf("data: unknown dataset %q (known: %s); any folder holding the four IDX files loads with an explicit directory (-data-dir)",
			name, strings.Join(KnownDatasets(), ", "))
	}
	offline := opts.Offline
	if v := os.Getenv(EnvOffline); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("data: %s=%q: want a boolean such as 1 or 0", EnvOffline, v)
		}
		offline = offline || b
	}

	places, cache := searchPath(name, sp != nil, opts)
	if name == "" {
		name = filepath.Base(opts.Dir)
	}
	nf := &NotFoundError{Name: name, known: sp != nil, offline: offline}
	for _, p := range places {
		if p.dir == "" {
			nf.Searched = append(nf.Searched, p.String())
			continue
		}
		paths, why := findFiles(p.dir)
		if why == "" {
			return loadFiles(name, p.dir, p.source, paths)
		}
		p.why = why
		nf.Searched = append(nf.Searched, p.String())
	}
	if sp == nil || offline {
		return nil, nf
	}
	if cache == "" {
		nf.Err = errors.New("no user cache folder to download into (set CacheDir, or HOME / XDG_CACHE_HOME)")
		return nil, nf
	}
	mirrors, err := resolveMirrors(sp, opts.Mirrors)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = defaultClient
	}
	if err := download(sp, cache, mirrors, client, opts.Progress); err != nil {
		nf.Err = err
		return nil, nf
	}
	paths, why := findFiles(cache)
	if why != "" {
		return nil, fmt.Errorf("data: %s after downloading: %s", cache, why)
	}
	return loadFiles(name, cache, SourceDownload, paths)
}

// searchPath lists the places Load searches for name, and the folder
// downloads go to ("" if there is none).
func searchPath(name string, known bool, opts LoadOptions) (places []place, cache string) {
	if opts.Dir != "" {
		places = append(places, place{source: SourceDir, dir: opts.Dir})
		if filepath.IsLocal(name) {
			places = append(places, place{source: SourceDir, dir: filepath.Join(opts.Dir, name)})
		}
	}
	if !known {
		return places, ""
	}
	if env := os.Getenv(EnvData); env != "" {
		places = append(places, place{source: SourceEnv, dir: filepath.Join(env, name)})
	} else {
		places = append(places, place{source: SourceEnv, why: EnvData + " is not set"})
	}
	root := opts.CacheDir
	if root == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			root = filepath.Join(dir, "govae")
		} else {
			places = append(places, place{source: SourceCache, why: err.Error()})
		}
	}
	if root != "" {
		cache = filepath.Join(root, name)
		places = append(places, place{source: SourceCache, dir: cache})
	}
	places = append(places, place{source: SourceSystem, dir: filepath.Join(systemDir, name)})
	return places, cache
}

// NotFoundError reports that no searched place held a dataset and that it
// could not be downloaded.
type NotFoundError struct {
	Name     string
	Searched []string // each place searched and why it did not do
	Err      error    // why the download failed; nil when none was tried

	known, offline bool
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: dataset %q not found; searched:", e.Name)
	for _, s := range e.Searched {
		b.WriteString("\n  " + s)
	}
	switch {
	case !e.known:
		b.WriteString("\nit is not a known dataset, so it cannot be downloaded")
	case e.offline:
		b.WriteString("\ndownloading is disabled (offline)")
	case e.Err != nil:
		b.WriteString("\ndownload failed: " + e.Err.Error())
	}
	b.WriteString("\nto supply the files:")
	fmt.Fprintf(&b, "\n  - pass -data-dir DIR, a folder holding %s (each with or without .gz)", strings.Join(fileNames[:], ", "))
	if e.known {
		fmt.Fprintf(&b, "\n  - or set %s=DIR with the files in DIR/%s/", EnvData, e.Name)
		if sp := lookup(e.Name); sp != nil && sp.debian != "" {
			fmt.Fprintf(&b, "\n  - or install them with: sudo apt-get install %s", sp.debian)
		}
		if e.offline {
			fmt.Fprintf(&b, "\n  - or allow downloading into the user cache (no offline option, %s unset)", EnvOffline)
		}
	}
	return b.String()
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// LoadDir reads a dataset from the four IDX files in dir.
func LoadDir(dir string) (*Dataset, error) {
	paths, why := findFiles(dir)
	if why != "" {
		return nil, fmt.Errorf("data: %s: %s", dir, why)
	}
	return loadFiles(filepath.Base(dir), dir, SourceDir, paths)
}

// findFiles locates the four files in dir, each under the first of its
// usual names that exists: raw first (it reads fastest), then .gz, then the
// "train-images.idx3-ubyte" spelling some archives use. why says what is
// wrong when not all four are there.
func findFiles(dir string) (paths [4]string, why string) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return paths, "does not exist"
	case err != nil:
		return paths, err.Error()
	case !fi.IsDir():
		return paths, "not a folder"
	}
	var missing []string
	for role, base := range fileNames {
		path, err := findFile(dir, base)
		if err != nil {
			return paths, err.Error()
		}
		if path == "" {
			missing = append(missing, base+"[.gz]")
		}
		paths[role] = path
	}
	if len(missing) > 0 {
		return paths, "missing " + strings.Join(missing, ", ")
	}
	return paths, ""
}

// findFile returns the path of base in dir under any accepted name, "" if
// none exists.
func findFile(dir, base string) (string, error) {
	dotted := strings.Replace(base, "-idx", ".idx", 1)
	for _, name := range []string{base, base + ".gz", dotted, dotted + ".gz"} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode().IsRegular() {
			return path, nil
		}
	}
	return "", nil
}

// loadFiles reads the two splits concurrently: gzip decoding dominates and
// the splits are independent.
func loadFiles(name, dir, source string, paths [4]string) (*Dataset, error) {
	ds := &Dataset{Name: name, Dir: dir, Source: source}
	var wg sync.WaitGroup
	var trainErr, testErr error
	wg.Go(func() { ds.Train, trainErr = loadSplit(paths[trainImages], paths[trainLabels]) })
	wg.Go(func() { ds.Test, testErr = loadSplit(paths[testImages], paths[testLabels]) })
	wg.Wait()
	if err := errors.Join(trainErr, testErr); err != nil {
		return nil, err
	}
	tr, te := ds.Train.Images, ds.Test.Images
	if tr.Rows != te.Rows || tr.Cols != te.Cols {
		return nil, &FormatError{File: ds.Test.ImagesPath, Msg: fmt.Sprintf("images are %dx%d, want %dx%d like %s", te.Rows, te.Cols, tr.Rows, tr.Cols, ds.Train.ImagesPath)}
	}
	return ds, nil
}

func loadSplit(imagesPath, labelsPath string) (Split, error) {
	imgs, err := ReadImagesFile(imagesPath)
	if err != nil {
		return Split{}, err
	}
	labels, err := ReadLabelsFile(labelsPath)
	if err != nil {
		return Split{}, err
	}
	if len(labels) != imgs.N {
		return Split{}, &FormatError{File: labelsPath, Msg: fmt.Sprintf("%d labels, want %d (one per image in %s)", len(labels), imgs.N, imagesPath)}
	}
	return Split{Images: imgs, Labels: labels, ImagesPath: imagesPath, LabelsPath: labelsPath}, nil
}

// resolveMirrors picks the mirror list: the option, else $GOVAE_MIRRORS,
// else the dataset's published mirrors.
func resolveMirrors(sp *spec, opt []string) ([]string, error) {
	mirrors, from := opt, "Mirrors option"
	if len(mirrors) == 0 {
		if env := os.Getenv(EnvMirrors); env != "" {
			mirrors, from = strings.Split(env, ","), EnvMirrors
		}
	}
	if len(mirrors) == 0 {
		return sp.mirrors, nil
	}
	out := make([]string, 0, len(mirrors))
	for _, m := range mirrors {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") {
			return nil, fmt.Errorf("data: %s: mirror %q is not an http(s) URL", from, m)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("data: %s lists no mirror", from)
	}
	return slices.Clip(out), nil
}
