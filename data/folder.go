package data

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // decoders for image folders
	_ "image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	xdraw "golang.org/x/image/draw"
)

// DetectKind says what kind of dataset folder dir is: KindIDX when it holds
// the four IDX files, KindCIFAR10 when it holds CIFAR-10 binary batches,
// KindImageFolder when it holds PNG or JPEG files (looked for within three
// folder levels: dir/train/class/x.png). why says what dir lacks when it is none of these.
func DetectKind(dir string) (kind, why string) {
	if why := checkDir(dir); why != "" {
		return "", why
	}
	_, idxWhy := findFiles(dir)
	if idxWhy == "" {
		return KindIDX, ""
	}
	if partialIDX(dir) {
		return "", idxWhy
	}
	if _, _, found, cifarWhy := cifarFiles(dir); found {
		if cifarWhy != "" {
			return "", "CIFAR-10 folder: " + cifarWhy
		}
		return KindCIFAR10, ""
	}
	if hasImages(dir) {
		return KindImageFolder, ""
	}
	return "", idxWhy + " (IDX); no data_batch_*.bin (CIFAR-10); no .png, .jpg or .jpeg images (image folder)"
}

// partialIDX reports whether dir holds any of the IDX files, so that what
// is missing is reported as the IDX files' absence and not as "no images".
func partialIDX(dir string) bool {
	for _, base := range fileNames {
		if p, problem, _ := findFile(dir, base); p != "" || problem != "" {
			return true
		}
	}
	return false
}

// hasImages reports whether an image file lies within three levels of dir
// (dir/train/class/x.png is the deepest layout read).
func hasImages(dir string) bool {
	found, seen := false, 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		seen++
		if err != nil || seen > 100000 {
			return fs.SkipAll
		}
		if d.IsDir() {
			if p != dir && (hidden(d.Name()) || depth(dir, p) > 2) {
				return fs.SkipDir
			}
			return nil
		}
		if isImageName(d.Name()) && !hidden(d.Name()) {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found
}

func depth(root, p string) int {
	rel, _ := filepath.Rel(root, p)
	return strings.Count(filepath.ToSlash(rel), "/")
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// ImageFolderOptions says how a folder of images is read. The zero value
// keeps the images' own size (which must then be the same for all), picks
// grey or colour from the files, and holds out 10% for testing when there
// is no test folder.
type ImageFolderOptions struct {
	// Rows and Cols, when set (both), give every image this size: the
	// largest centred crop of that aspect ratio, resized (Catmull-Rom).
	Rows, Cols int
	// Channels is 1 (grey: RGB becomes 0.299R+0.587G+0.114B) or 3 (RGB:
	// grey is repeated); 0 means 1 if every file is grey, else 3.
	Channels int
	// TestFraction is the share of images held out for testing when there
	// is no test folder (0 means 0.1).
	TestFraction float64
	// MaxImages bounds the number of image files (0 means DefaultMaxImages).
	MaxImages int
}

// Bounds on image folders, beyond the byte limit of ReadOptions.
const (
	// DefaultMaxImages is ImageFolderOptions.MaxImages's default.
	DefaultMaxImages = 1 << 20
	// MaxImageSide bounds Rows and Cols of the images fed to a model.
	MaxImageSide = 4096
	// maxSourcePixels bounds one file's decoded size (a decoded RGBA
	// image takes four bytes per pixel): 64 megapixels.
	maxSourcePixels = 1 << 26
	// maxClassDepth bounds how deep images lie below a class folder.
	maxClassDepth = 8
)

// imageFile is one file of an image folder: path, path relative to its
// split's root (slash-separated, for the deterministic split), class.
type imageFile struct {
	path, rel, class string
	w, h             int
	grey             bool
}

// loadImageFolder reads a folder of PNG/JPEG images. Layouts:
//
//	dir/train/<class>/... and dir/test/<class>/...  (test/ or val/)
//	dir/<class>/...                                  (split by hash)
//	dir/*.png                                        (no labels)
//
// dir/train/*.png and dir/test/*.png work too, without labels.
func loadImageFolder(ctx context.Context, dir string, opts ImageFolderOptions, ro ReadOptions, testOnly bool) (*Dataset, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	maxImages := opts.MaxImages
	if maxImages == 0 {
		maxImages = DefaultMaxImages
	}
	trainRoot, testRoot := dir, ""
	if isDir(filepath.Join(dir, "train")) {
		trainRoot = filepath.Join(dir, "train")
		for _, name := range []string{"test", "val"} {
			if p := filepath.Join(dir, name); isDir(p) {
				testRoot = p
				break
			}
		}
	}
	trainFiles, err := listImages(trainRoot, maxImages)
	if err != nil {
		return nil, err
	}
	var testFiles []imageFile
	if testRoot != "" {
		if testFiles, err = listImages(testRoot, maxImages-len(trainFiles)); err != nil {
			return nil, err
		}
		if len(testFiles) == 0 {
			return nil, &FormatError{File: testRoot, Msg: "holds no .png, .jpg or .jpeg images", Err: ErrNoImages}
		}
	}
	if len(trainFiles) == 0 {
		return nil, &FormatError{File: trainRoot, Msg: "holds no .png, .jpg or .jpeg images", Err: ErrNoImages}
	}
	if testRoot == "" {
		frac := opts.TestFraction
		if frac == 0 {
			frac = 0.1
		}
		if trainFiles, testFiles, err = splitFiles(trainRoot, trainFiles, frac); err != nil {
			return nil, err
		}
	}

	// Checks and errors look at the files in lexical order, so that they
	// name the same file whatever the split.
	all := slices.Concat(trainFiles, testFiles)
	slices.SortFunc(all, func(a, b imageFile) int { return strings.Compare(a.path, b.path) })

	// The classes: labelled when every image is in a class folder.
	labelled := all[0].class != ""
	if i := slices.IndexFunc(all, func(f imageFile) bool { return (f.class != "") != labelled }); i >= 0 {
		loose, inClass := all[0], all[i]
		if labelled {
			loose, inClass = inClass, loose
		}
		return nil, &FormatError{File: loose.path, Msg: fmt.Sprintf("is in no class folder, but %s is in one; put every image in a class folder (label = folder name) or none", inClass.path)}
	}
	var classes []string
	if labelled {
		for _, f := range all {
			classes = append(classes, f.class)
		}
		slices.Sort(classes)
		classes = slices.Compact(classes)
		if len(classes) > 256 {
			return nil, &FormatError{File: dir, Msg: fmt.Sprintf("%d class folders, at most 256 are supported (labels are bytes)", len(classes))}
		}
	}

	// The shape: from the options, else from the files, which must agree.
	rows, cols := opts.Rows, opts.Cols
	if rows == 0 {
		rows, cols = all[0].h, all[0].w
		for _, f := range all {
			if f.w != cols || f.h != rows {
				return nil, &FormatError{File: f.path, Msg: fmt.Sprintf("image is %dx%d (width x height), but %s is %dx%d; ask for one size (ImageFolderOptions.Rows and Cols) to centre-crop and resize them all", f.w, f.h, all[0].path, cols, rows)}
			}
		}
		if rows > MaxImageSide || cols > MaxImageSide {
			return nil, &FormatError{File: all[0].path, Msg: fmt.Sprintf("images are %dx%d, larger than %d on a side; ask for a smaller size (ImageFolderOptions.Rows and Cols)", cols, rows, MaxImageSide)}
		}
	}
	channels := opts.Channels
	if channels == 0 {
		channels = 1
		for _, f := range all {
			if !f.grey {
				channels = 3
				break
			}
		}
	}
	per := uint64(channels * rows * cols)
	if limit := ro.limit(); uint64(len(all))*per > limit {
		return nil, &FormatError{File: dir, Msg: fmt.Sprintf("%d images of %dx%dx%d take %d bytes, over the limit of %d bytes (raise it with $%s or LoadOptions.MaxBytes, or ask for a smaller size)", len(all), channels, rows, cols, uint64(len(all))*per, limit, EnvMaxBytes), Err: ErrTooLarge}
	}

	ds := &Dataset{Name: filepath.Base(dir), Dir: dir, Source: SourceDir, Kind: KindImageFolder, Classes: classes}
	for _, s := range []struct {
		split *Split
		files []imageFile
		root  string
	}{{&ds.Train, trainFiles, trainRoot}, {&ds.Test, testFiles, cmp(testRoot, trainRoot)}} {
		if testOnly && s.split == &ds.Train {
			continue // listed (for the split, classes and shape), not decoded
		}
		imgs := &Images{N: len(s.files), Channels: channels, Rows: rows, Cols: cols, Pix: make([]uint8, uint64(len(s.files))*per)}
		labels := make([]uint8, len(s.files))
		paths := make([]string, len(s.files))
		for i, f := range s.files {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("data: reading %s: %w", dir, err)
			}
			if err := decodeInto(f, imgs.Image(i), channels, rows, cols); err != nil {
				return nil, err
			}
			if labelled {
				k, _ := slices.BinarySearch(classes, f.class)
				labels[i] = uint8(k)
			}
			paths[i] = f.path
		}
		*s.split = Split{Images: imgs, Labels: labels, ImagesPath: s.root, LabelsPath: s.root, Files: paths}
	}
	return ds, ds.check()
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (o ImageFolderOptions) check() error {
	switch {
	case (o.Rows == 0) != (o.Cols == 0), o.Rows < 0, o.Cols < 0, o.Rows > MaxImageSide, o.Cols > MaxImageSide:
		return fmt.Errorf("data: image size %dx%d (rows x cols): want both 1 to %d, or both 0 to keep the files' size", o.Rows, o.Cols, MaxImageSide)
	case o.Channels != 0 && o.Channels != 1 && o.Channels != 3:
		return fmt.Errorf("data: %d channels: want 1 (grey), 3 (RGB) or 0 (from the files)", o.Channels)
	case !(o.TestFraction >= 0 && o.TestFraction < 1):
		return fmt.Errorf("data: test fraction %g: want at least 0 and below 1", o.TestFraction)
	case o.MaxImages < 0:
		return fmt.Errorf("data: MaxImages %d: want 0 (the default, %d) or more", o.MaxImages, DefaultMaxImages)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// listImages lists the image files under root, in lexical order, with
// their class (the first folder below root; "" for files in root) and
// their size and colour model from the file header alone.
func listImages(root string, maxImages int) ([]imageFile, error) {
	var files []imageFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		if p == root {
			return nil
		}
		if hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if depth(root, p) > maxClassDepth {
				return &FormatError{File: p, Msg: fmt.Sprintf("folders nested deeper than %d levels", maxClassDepth)}
			}
			return nil
		}
		if !isImageName(d.Name()) {
			return nil
		}
		if len(files) >= maxImages {
			return &FormatError{File: root, Msg: fmt.Sprintf("more than %d image files (raise ImageFolderOptions.MaxImages)", maxImages), Err: ErrTooLarge}
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		f := imageFile{path: p, rel: rel}
		if i := strings.IndexByte(rel, '/'); i >= 0 {
			f.class = rel[:i]
		}
		if err := f.config(); err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// config reads the file's header: size and colour model.
func (f *imageFile) config() error {
	r, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer r.Close()
	if fi, err := r.Stat(); err != nil || !fi.Mode().IsRegular() {
		return &FormatError{File: f.path, Msg: "not a regular file, want a PNG or JPEG image"}
	}
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return &FormatError{File: f.path, Msg: "not a readable PNG or JPEG image", Err: err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxSourcePixels {
		return &FormatError{File: f.path, Msg: fmt.Sprintf("%s image of %dx%d pixels, want 1 to %d pixels", format, cfg.Width, cfg.Height, maxSourcePixels)}
	}
	f.w, f.h, f.grey = cfg.Width, cfg.Height, greyModel(cfg.ColorModel)
	return nil
}

// greyModel reports whether every colour of model m is a grey.
func greyModel(m color.Model) bool {
	switch m {
	case color.GrayModel, color.Gray16Model:
		return true
	}
	if p, ok := m.(color.Palette); ok {
		for _, c := range p {
			r, g, b, _ := c.RGBA()
			if r != g || g != b {
				return false
			}
		}
		return true
	}
	return false
}

// splitFiles holds out ceil(frac*n) files for testing: those whose
// relative paths have the smallest SHA-256, so the split depends neither
// on the order the system lists files in nor, for the files already
// there, much on files added later.
func splitFiles(root string, files []imageFile, frac float64) (train, test []imageFile, err error) {
	n := len(files)
	nTest := int(math.Ceil(frac * float64(n)))
	if n < 2 || nTest >= n {
		return nil, nil, &FormatError{File: root, Msg: fmt.Sprintf("%d images cannot be split into a training and a test set (test fraction %g); add images or a test/ folder", n, frac), Err: ErrNoImages}
	}
	key := func(f imageFile) uint64 {
		h := sha256.Sum256([]byte(f.rel))
		return binary.BigEndian.Uint64(h[:8])
	}
	order := slices.Clone(files)
	slices.SortStableFunc(order, func(a, b imageFile) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return strings.Compare(a.rel, b.rel)
	})
	isTest := map[string]bool{}
	for _, f := range order[:nTest] {
		isTest[f.rel] = true
	}
	for _, f := range files { // keep lexical order within each split
		if isTest[f.rel] {
			test = append(test, f)
		} else {
			train = append(train, f)
		}
	}
	return train, test, nil
}

// decodeInto decodes f and writes it into dst as channels x rows x cols,
// centre-cropped to the aspect ratio of rows x cols and resized when its
// size differs. Transparent pixels come out over black.
func decodeInto(f imageFile, dst []uint8, channels, rows, cols int) error {
	r, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer r.Close()
	src, _, err := image.Decode(io.LimitReader(r, 1<<30))
	if err != nil {
		return &FormatError{File: f.path, Msg: "cannot decode image", Err: err}
	}
	b := src.Bounds()
	if b.Dx() != f.w || b.Dy() != f.h {
		return &FormatError{File: f.path, Msg: fmt.Sprintf("image changed while read: %dx%d, header said %dx%d", b.Dx(), b.Dy(), f.w, f.h)}
	}
	rect := image.Rect(0, 0, cols, rows)
	var rgba *image.RGBA
	var grey *image.Gray
	var dstImg draw.Image
	if channels == 1 {
		grey = image.NewGray(rect)
		dstImg = grey
	} else {
		rgba = image.NewRGBA(rect)
		dstImg = rgba
	}
	if b.Dx() == cols && b.Dy() == rows {
		draw.Draw(dstImg, rect, src, b.Min, draw.Src)
	} else {
		xdraw.CatmullRom.Scale(dstImg, rect, src, centreCrop(b, rows, cols), xdraw.Src, nil)
	}
	plane := rows * cols
	if grey != nil {
		for y := range rows {
			copy(dst[y*cols:(y+1)*cols], grey.Pix[y*grey.Stride:])
		}
		return nil
	}
	for y := range rows {
		line := rgba.Pix[y*rgba.Stride:]
		for x := range cols {
			for c := range 3 {
				dst[c*plane+y*cols+x] = line[4*x+c]
			}
		}
	}
	return nil
}

// centreCrop returns the largest rectangle of b's centre with the aspect
// ratio cols:rows.
func centreCrop(b image.Rectangle, rows, cols int) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	// Compare w/h with cols/rows in integers.
	if int64(w)*int64(rows) > int64(h)*int64(cols) {
		cw := max(1, int(int64(h)*int64(cols)/int64(rows)))
		x0 := b.Min.X + (w-cw)/2
		return image.Rect(x0, b.Min.Y, x0+cw, b.Max.Y)
	}
	ch := max(1, int(int64(w)*int64(rows)/int64(cols)))
	y0 := b.Min.Y + (h-ch)/2
	return image.Rect(b.Min.X, y0, b.Max.X, y0+ch)
}
