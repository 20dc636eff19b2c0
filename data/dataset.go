package data

import (
	"context"
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
	"time"
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
	// EnvMaxBytes replaces DefaultMaxBytes (a number of bytes; negative for
	// no limit) when LoadOptions.MaxBytes is 0.
	EnvMaxBytes = "GOVAE_DATA_MAX_BYTES"
)

// Kinds of data folder, as reported in Dataset.Kind.
const (
	KindIDX         = "idx"
	KindCIFAR10     = "cifar-10"
	KindImageFolder = "image folder"
)

// Where Load found a dataset, as reported in Dataset.Source.
const (
	SourceDir      = "-data-dir"
	SourceRun      = "training run's data folder" // the folder a checkpoint records, reused by eval and sample
	SourceEnv      = "$" + EnvData
	SourceCache    = "user cache"
	SourceModule   = "GoMNIST module"
	SourceSystem   = "Debian dataset package"
	SourceDownload = "download"
)

// systemDir is where Debian's dataset-* packages install their files.
// A variable so that tests can stand in for it.
var systemDir = "/usr/share/datasets"

// Split is one part (train or test) of a dataset.
type Split struct {
	Images *Images
	Labels []uint8 // one per image
	// ImagesPath and LabelsPath name the files read (for CIFAR-10 and image
	// folders, the folder or first file: what an error should point at).
	ImagesPath, LabelsPath string
	// Files names each image's file, for an image folder (nil otherwise).
	Files []string
}

// Dataset is a train and a test split read from one folder.
type Dataset struct {
	Name, Dir string
	Source    string // how Dir was found: one of the Source* constants
	// SourceNote adds to Source (the GoMNIST module's version).
	SourceNote string
	Kind       string // one of the Kind* constants
	// Classes names the labels, label i being Classes[i], when the data
	// names them (CIFAR-10, an image folder's sub-folders); nil otherwise.
	Classes     []string
	Train, Test Split
	// Verified says the files' checksums matched the official ones.
	Verified bool
}

// Description says which copy of which data this is, for the console:
// name, how much of the official set (a subset is called one), shape,
// source and folder.
func (ds *Dataset) Description() string {
	tr, te := ds.Train.Images, ds.Test.Images
	title, size := ds.Name, ""
	if sp := lookup(ds.Name); sp != nil && ds.Kind == KindIDX {
		title = sp.title
		switch {
		case tr == nil: // LoadOptions.TestOnly
		case tr.N == sp.trainN && te.N == sp.testN:
			size = fmt.Sprintf("full: %s training and %s test images", commas(tr.N), commas(te.N))
		case tr.N < sp.trainN:
			size = fmt.Sprintf("%s-image training subset of the %s, %s test images", commas(tr.N), commas(sp.trainN), commas(te.N))
		}
	}
	switch {
	case tr == nil:
		s := "s"
		if te.N == 1 {
			s = ""
		}
		size = fmt.Sprintf("%s test image%s; training images not read", commas(te.N), s)
	case size == "":
		size = fmt.Sprintf("%s training and %s test images", commas(tr.N), commas(te.N))
	}
	src := ds.Source
	if ds.SourceNote != "" {
		src += " " + ds.SourceNote
	}
	if ds.Verified {
		src += ", SHA-256 verified"
	}
	cls := ""
	if len(ds.Classes) > 0 {
		cls = fmt.Sprintf(", %d classes", len(ds.Classes))
	}
	return fmt.Sprintf("%s (%s) of %s%s, %s, from %s (%s)", title, size, te.shape(), cls, ds.Kind, ds.Dir, src)
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// LoadOptions says where Load looks and whether and how it downloads.
type LoadOptions struct {
	// Dir is an explicit folder (the -data-dir flag), then the only place
	// searched, and nothing is downloaded: the files (IDX, CIFAR-10 or
	// images) may be in Dir itself or in Dir/<name>.
	Dir string
	// DirSource names where Dir came from in Dataset.Source and in errors
	// (default "-data-dir"): tools that reuse the folder a checkpoint
	// records set it, so that they do not credit a flag nobody gave. The
	// GoMNIST module's data folder is credited to the module whatever it is.
	DirSource string
	// Progress receives download progress (a bar when it is a terminal,
	// plain lines otherwise) and one line saying which copy of the data is
	// used. Nil means silent.
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
	// IdleTimeout gives up on a download that receives nothing for this
	// long (0 means DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxBytes bounds each split's decompressed data: 0 means
	// $GOVAE_DATA_MAX_BYTES or DefaultMaxBytes, negative no limit.
	MaxBytes int64
	// Images says how an image folder is read (size, channels, split).
	Images ImageFolderOptions
	// TestOnly reads the test split alone, for tools that never look at the
	// training images: Dataset.Train is then empty (Images nil).
	TestOnly bool
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
	name  string
	title string
	// official split sizes, to tell the full set from a subset
	trainN, testN int
	mirrors       []string
	// sha256 of each file's decompressed content, by role. Checking the
	// content rather than the .gz lets re-compressed copies (Debian's) pass.
	sha256 [4]string
	// debian is the Debian package that installs the files, if any.
	debian string
}

var datasets = []*spec{
	{
		name:   "mnist",
		title:  "MNIST",
		trainN: 60000, testN: 10000,
		mirrors: []string{
			"https://ossci-datasets.s3.amazonaws.com/mnist/",
			"https://storage.googleapis.com/cvdf-datasets/mnist/",
		},
		sha256: [4]string{
			// Computed from the GoMNIST module's official files, whose .gz
			// MD5s (f68b3c2d..., d53e105e...) match the published ones.
			trainImages: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
			trainLabels: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
			// Computed from the official test files, whose .gz MD5s
			// (9fb629c4..., ec29112d...) match the published ones.
			testImages: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
			testLabels: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
		},
	},
	{
		name:   "fashion-mnist",
		title:  "Fashion-MNIST",
		trainN: 60000, testN: 10000,
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
// verify, when set, checks the files found there ("" if they are right).
type place struct {
	source, dir, why, note string
	verify                 func(paths [4]string) string
}

func (p place) String() string {
	if p.dir == "" {
		return p.source + ": " + p.why
	}
	return p.dir + " (" + p.source + "): " + p.why
}

// Load is LoadContext without cancellation.
func Load(name string, opts LoadOptions) (*Dataset, error) {
	return LoadContext(context.Background(), name, opts)
}

// LoadContext finds the dataset called name and reads both of its splits.
//
// With opts.Dir (the -data-dir flag) only opts.Dir and opts.Dir/<name> are
// searched, and the folder may hold IDX files, CIFAR-10 binary batches or
// PNG/JPEG images (see DetectKind); nothing is downloaded. Otherwise a known
// name is looked for, in order, in $GOVAE_DATA/<name>, the user cache, the
// GoMNIST module's data/ folder (for mnist, checksums verified) and
// /usr/share/datasets/<name>; the first folder that holds all four IDX
// files wins. If none does the files are downloaded into the user cache,
// unless offline. The copy used is described on opts.Progress.
//
// Reading stops soon after ctx is cancelled, with an error wrapping ctx's.
func LoadContext(ctx context.Context, name string, opts LoadOptions) (*Dataset, error) {
	ds, err := load(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "data: using %s\n", ds.Description())
	}
	return ds, nil
}

func load(ctx context.Context, name string, opts LoadOptions) (*Dataset, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("data: loading %s: %w", name, err)
	}
	sp := lookup(name)
	ro, err := readOptions(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts.Dir != "" {
		return loadExplicit(ctx, name, sp, opts, ro)
	}
	if sp == nil {
		return nil, fmt.Errorf("data: unknown dataset %q (known: %s); any folder holding IDX files, CIFAR-10 batches or PNG/JPEG images loads with an explicit directory (-data-dir)",
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

	places, cache := searchPath(name, opts)
	nf := &NotFoundError{Name: name, known: true, offline: offline}
	for _, p := range places {
		if p.dir == "" {
			nf.Searched = append(nf.Searched, p.String())
			continue
		}
		paths, why := findFiles(p.dir)
		if why == "" && p.verify != nil {
			why = p.verify(paths)
		}
		if why == "" {
			ds, err := loadFiles(ro, name, p.dir, p.source, paths, opts.TestOnly)
			if ds != nil {
				ds.Verified = p.verify != nil
				ds.SourceNote = p.note
			}
			return ds, err
		}
		p.why = why
		nf.Searched = append(nf.Searched, p.String())
	}
	if offline {
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
	idle := opts.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	if err := download(ctx, sp, cache, mirrors, client, idle, opts.Progress); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("data: downloading %s: %w", name, err)
		}
		nf.Err = err
		return nil, nf
	}
	paths, why := findFiles(cache)
	if why != "" {
		return nil, fmt.Errorf("data: %s after downloading: %s", cache, why)
	}
	ds, err := loadFiles(ro, name, cache, SourceDownload, paths, opts.TestOnly)
	if ds != nil {
		ds.Verified = true
	}
	return ds, err
}

// readOptions resolves the size limit: the option, else $GOVAE_DATA_MAX_BYTES,
// else DefaultMaxBytes.
func readOptions(ctx context.Context, opts LoadOptions) (ReadOptions, error) {
	ro := ReadOptions{Context: ctx, MaxBytes: opts.MaxBytes}
	if ro.MaxBytes == 0 {
		if v := os.Getenv(EnvMaxBytes); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n == 0 {
				return ro, fmt.Errorf("data: %s=%q: want a number of bytes (negative for no limit)", EnvMaxBytes, v)
			}
			ro.MaxBytes = n
		}
	}
	return ro, nil
}

// loadExplicit loads from opts.Dir or opts.Dir/<name>, whatever kind of
// folder it is, and never downloads: a user who names a folder wants that
// folder, and a silent download elsewhere would hide a typo.
func loadExplicit(ctx context.Context, name string, sp *spec, opts LoadOptions, ro ReadOptions) (*Dataset, error) {
	dirs := []string{opts.Dir}
	if name != "" && filepath.IsLocal(name) {
		dirs = append(dirs, filepath.Join(opts.Dir, name))
	}
	if name == "" {
		name = filepath.Base(opts.Dir)
	}
	label := opts.DirSource
	if label == "" {
		label = SourceDir
	}
	nf := &NotFoundError{Name: name, known: sp != nil, explicit: true, dirLabel: label}
	for _, dir := range dirs {
		kind, why := DetectKind(dir)
		if why == "" {
			ds, err := loadKind(ctx, name, dir, kind, opts, ro)
			if err == nil {
				ds.Source = label
				// The experiments name the module's folder, and eval and
				// sample reuse it from a checkpoint: credit the module.
				if note := goMNISTNote(dir); note != "" {
					ds.Source, ds.SourceNote = SourceModule, note
				}
			}
			return ds, err
		}
		nf.Searched = append(nf.Searched, place{source: label, dir: dir, why: why}.String())
	}
	return nil, nf
}

// loadKind reads the dataset in dir, a folder of the given kind.
func loadKind(ctx context.Context, name, dir, kind string, opts LoadOptions, ro ReadOptions) (*Dataset, error) {
	if kind != KindImageFolder && opts.Images != (ImageFolderOptions{}) {
		// Options that would be silently ignored are refused.
		what := map[string]string{KindIDX: "an IDX", KindCIFAR10: "a CIFAR-10"}[kind]
		return nil, fmt.Errorf("data: %s is %s folder; size, channel and split options apply only to image folders", dir, what)
	}
	switch kind {
	case KindCIFAR10:
		return loadCIFAR(ro, dir, opts.TestOnly)
	case KindImageFolder:
		return loadImageFolder(ctx, dir, opts.Images, ro, opts.TestOnly)
	}
	paths, why := findFiles(dir)
	if why != "" {
		return nil, fmt.Errorf("data: %s: %s", dir, why)
	}
	return loadFiles(ro, name, dir, SourceDir, paths, opts.TestOnly)
}

// searchPath lists the places Load searches for the known dataset name
// without an explicit folder, and the folder downloads go to ("" if there
// is none).
func searchPath(name string, opts LoadOptions) (places []place, cache string) {
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
	if name == "mnist" {
		places = append(places, goMNISTPlace())
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

	known, offline, explicit bool
	dirLabel                 string // the explicit folder's source, "-data-dir" unless a tool says otherwise
}

func (e *NotFoundError) dirLabelOr() string {
	if e.dirLabel == "" {
		return SourceDir
	}
	return e.dirLabel
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	if e.explicit {
		fmt.Fprintf(&b, "data: dataset %q not found in the %s folder; searched:", e.Name, e.dirLabelOr())
	} else {
		fmt.Fprintf(&b, "data: dataset %q not found; searched:", e.Name)
	}
	for _, s := range e.Searched {
		b.WriteString("\n  " + s)
	}
	switch {
	case e.explicit:
		if l := e.dirLabelOr(); l == SourceDir {
			b.WriteString("\n-data-dir names the folder to use, so nothing else is searched and nothing is downloaded")
		} else {
			fmt.Fprintf(&b, "\nthe %s is used as given, so nothing else is searched and nothing is downloaded; -data-dir names another", l)
		}
	case !e.known:
		b.WriteString("\nit is not a known dataset, so it cannot be downloaded")
	case e.offline:
		b.WriteString("\ndownloading is disabled (offline)")
	case e.Err != nil:
		b.WriteString("\ndownload failed: " + e.Err.Error())
	}
	if e.explicit {
		b.WriteString("\na data folder holds one of:")
		fmt.Fprintf(&b, "\n  - IDX files: %s (each with or without .gz)", strings.Join(fileNames[:], ", "))
		b.WriteString("\n  - CIFAR-10 binary batches: data_batch_1.bin ... data_batch_5.bin and test_batch.bin")
		b.WriteString("\n  - PNG or JPEG images, optionally in one sub-folder per class, and optionally split into train/ and test/")
		if e.known {
			fmt.Fprintf(&b, "\nwithout -data-dir, %q is searched for in the usual places and downloaded if missing", e.Name)
		}
		return b.String()
	}
	b.WriteString("\nto supply the files:")
	fmt.Fprintf(&b, "\n  - pass -data-dir DIR, a folder holding %s (each with or without .gz)", strings.Join(fileNames[:], ", "))
	if e.known {
		fmt.Fprintf(&b, "\n  - or set %s=DIR with the files in DIR/%s/", EnvData, e.Name)
		if e.Name == "mnist" {
			fmt.Fprintf(&b, "\n  - or put the GoMNIST module in the Go module cache: go mod download %s@%s", goMNISTPath, goMNISTVersion)
		}
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

// LoadDir reads the dataset in dir, whatever its kind (see DetectKind),
// with the default limits.
func LoadDir(dir string) (*Dataset, error) {
	kind, why := DetectKind(dir)
	if why != "" {
		return nil, fmt.Errorf("data: %s: %s", dir, why)
	}
	return loadKind(context.Background(), filepath.Base(dir), dir, kind, LoadOptions{}, ReadOptions{})
}

// findFiles locates the four files in dir, each under the first of its
// usual names that exists: raw first (it reads fastest), then .gz, then the
// "train-images.idx3-ubyte" spelling some archives use. why says what is
// wrong when not all four are there.
func findFiles(dir string) (paths [4]string, why string) {
	if why := checkDir(dir); why != "" {
		return paths, why
	}
	var missing, bad []string
	for role, base := range fileNames {
		path, problem, err := findFile(dir, base)
		if err != nil {
			return paths, err.Error()
		}
		switch {
		case problem != "":
			bad = append(bad, problem)
		case path == "":
			missing = append(missing, base+"[.gz]")
		}
		paths[role] = path
	}
	var whys []string
	if len(missing) > 0 {
		whys = append(whys, "missing "+strings.Join(missing, ", "))
	}
	return paths, strings.Join(append(whys, bad...), "; ")
}

// checkDir says why dir cannot hold a dataset ("" if it can).
func checkDir(dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		return err.Error()
	case !fi.IsDir():
		return "not a folder"
	}
	return ""
}

// findFile returns the path of base in dir under any accepted name, "" if
// none exists. problem names a candidate that exists but is not a regular
// file (a directory, say), which is reported as such rather than as missing.
func findFile(dir, base string) (path, problem string, err error) {
	dotted := strings.Replace(base, "-idx", ".idx", 1)
	for _, name := range []string{base, base + ".gz", dotted, dotted + ".gz"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		if fi.Mode().IsRegular() {
			return p, "", nil
		}
		if problem == "" {
			what := "not a regular file"
			if fi.IsDir() {
				what = "a directory"
			}
			problem = name + " is " + what + ", want a data file"
		}
	}
	return "", problem, nil
}

// ErrNoImages is wrapped by the error for a split without images.
var ErrNoImages = errors.New("no images")

// loadFiles reads the two splits concurrently (the test split alone when
// testOnly): gzip decoding dominates and the splits are independent.
func loadFiles(ro ReadOptions, name, dir, source string, paths [4]string, testOnly bool) (*Dataset, error) {
	ds := &Dataset{Name: name, Dir: dir, Source: source, Kind: KindIDX}
	var wg sync.WaitGroup
	var trainErr, testErr error
	if !testOnly {
		wg.Go(func() { ds.Train, trainErr = loadSplit(ro, paths[trainImages], paths[trainLabels]) })
	}
	wg.Go(func() { ds.Test, testErr = loadSplit(ro, paths[testImages], paths[testLabels]) })
	wg.Wait()
	if err := errors.Join(trainErr, testErr); err != nil {
		return nil, err
	}
	return ds, ds.check()
}

// check refuses empty splits and splits of different image sizes (a
// training split not read, LoadOptions.TestOnly, has nothing to check).
func (ds *Dataset) check() error {
	for _, s := range []struct {
		split *Split
		what  string
	}{{&ds.Train, "training"}, {&ds.Test, "test"}} {
		if s.split.Images == nil && s.split == &ds.Train {
			continue
		}
		if s.split.Images.N == 0 {
			return &FormatError{File: s.split.ImagesPath, Msg: fmt.Sprintf("holds 0 images; the %s split needs at least one", s.what), Err: ErrNoImages}
		}
	}
	tr, te := ds.Train.Images, ds.Test.Images
	if tr != nil && (tr.Channels != te.Channels || tr.Rows != te.Rows || tr.Cols != te.Cols) {
		return &FormatError{File: ds.Test.ImagesPath, Msg: fmt.Sprintf("images are %s, want %s like %s", te.shape(), tr.shape(), ds.Train.ImagesPath)}
	}
	return nil
}

func loadSplit(ro ReadOptions, imagesPath, labelsPath string) (Split, error) {
	imgs, err := ro.ReadImagesFile(imagesPath)
	if err != nil {
		return Split{}, err
	}
	labels, err := ro.ReadLabelsFile(labelsPath)
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
