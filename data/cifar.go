package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// CIFAR-10 binary version: each record is one label byte and 3072 pixel
// bytes, the 1024 red values of a 32x32 image row by row, then the green,
// then the blue: exactly the channel-major layout of Images.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarPixels
)

// cifarClasses are CIFAR-10's label names, used when the folder has no
// batches.meta.txt.
var cifarClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarFiles lists the training batches (data_batch_N.bin, by N) and the
// test batch in dir. why says what is missing; found says whether dir
// holds any CIFAR file at all.
func cifarFiles(dir string) (train []string, test string, found bool, why string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", false, err.Error()
	}
	type batch struct {
		n    int
		path string
	}
	var batches []batch
	var bad []string
	for _, e := range entries {
		name := e.Name()
		isTest := name == "test_batch.bin"
		num, isTrain := strings.CutPrefix(name, "data_batch_")
		num, isTrain = strings.CutSuffix(num, ".bin")
		n, err := strconv.Atoi(num)
		isTrain = isTrain && strings.HasPrefix(name, "data_batch_") && err == nil && n >= 0
		if !isTest && !isTrain {
			continue
		}
		found = true
		if !e.Type().IsRegular() {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
				what := "not a regular file"
				if err == nil && fi.IsDir() {
					what = "a directory"
				}
				bad = append(bad, name+" is "+what+", want a data file")
				continue
			}
		}
		if isTest {
			test = filepath.Join(dir, name)
		} else {
			batches = append(batches, batch{n, filepath.Join(dir, name)})
		}
	}
	slices.SortFunc(batches, func(a, b batch) int { return a.n - b.n })
	for _, b := range batches {
		train = append(train, b.path)
	}
	var whys []string
	if len(train) == 0 {
		whys = append(whys, "missing data_batch_1.bin ... data_batch_5.bin")
	}
	if test == "" {
		whys = append(whys, "missing test_batch.bin")
	}
	return train, test, found, strings.Join(append(whys, bad...), "; ")
}

// loadCIFAR reads a CIFAR-10 binary folder: data_batch_*.bin as the
// training split (in batch order; not read when testOnly), test_batch.bin
// as the test split.
func loadCIFAR(ro ReadOptions, dir string, testOnly bool) (*Dataset, error) {
	train, test, _, why := cifarFiles(dir)
	if why != "" {
		return nil, fmt.Errorf("data: %s: %s", dir, why)
	}
	classes, err := cifarMeta(dir)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{Name: "cifar-10", Dir: dir, Source: SourceDir, Kind: KindCIFAR10, Classes: classes}
	var wg sync.WaitGroup
	var trainErr, testErr error
	if !testOnly {
		wg.Go(func() { ds.Train, trainErr = readCIFARSplit(ro, train, len(classes)) })
	}
	wg.Go(func() { ds.Test, testErr = readCIFARSplit(ro, []string{test}, len(classes)) })
	wg.Wait()
	if err := errors.Join(trainErr, testErr); err != nil {
		return nil, err
	}
	return ds, ds.check()
}

// cifarMeta reads the class names from batches.meta.txt, one per line,
// or returns CIFAR-10's when the file is absent.
func cifarMeta(dir string) ([]string, error) {
	path := filepath.Join(dir, "batches.meta.txt")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return slices.Clone(cifarClasses), nil
	}
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &FormatError{File: path, Msg: "unreadable", Err: err}
	}
	if len(names) == 0 || len(names) > 256 {
		return nil, &FormatError{File: path, Msg: fmt.Sprintf("%d class names, want 1 to 256 (one per line)", len(names))}
	}
	return names, nil
}

// readCIFARSplit reads the records of files into one image set, checking
// every size before it allocates and every label against the classes.
func readCIFARSplit(ro ReadOptions, files []string, classes int) (Split, error) {
	ctx := ro.ctx()
	sizes := make([]int64, len(files))
	var n int64
	for i, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			return Split{}, fmt.Errorf("data: %w", err)
		}
		if fi.Size()%cifarRecord != 0 {
			return Split{}, &FormatError{File: p, Msg: fmt.Sprintf("%d bytes, not a whole number of %d-byte records (a label byte and 3x32x32 pixels; CIFAR-100's two-label records are not read)", fi.Size(), cifarRecord)}
		}
		sizes[i] = fi.Size()
		n += fi.Size() / cifarRecord
	}
	if limit := ro.limit(); uint64(n)*cifarPixels > limit {
		return Split{}, &FormatError{File: files[0], Msg: fmt.Sprintf("%d images in %d files, %d bytes, over the limit of %d bytes (raise it with $%s or LoadOptions.MaxBytes)", n, len(files), n*cifarPixels, limit, EnvMaxBytes), Err: ErrTooLarge}
	}
	imgs := &Images{N: int(n), Channels: 3, Rows: cifarSide, Cols: cifarSide, Pix: make([]uint8, int(n)*cifarPixels)}
	labels := make([]uint8, n)
	k := 0
	for i, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return Split{}, fmt.Errorf("data: %w", err)
		}
		br := bufio.NewReaderSize(ctxReader{ctx, f}, 1<<20)
		for r := range int(sizes[i] / cifarRecord) {
			var lab [1]byte
			if _, err = io.ReadFull(br, lab[:]); err == nil {
				_, err = io.ReadFull(br, imgs.Image(k))
			}
			if err != nil {
				f.Close()
				if ctx.Err() != nil {
					return Split{}, fmt.Errorf("data: %s: %w", p, ctx.Err())
				}
				return Split{}, readFailure(p, fmt.Sprintf("record %d: file shrank while read", r), err)
			}
			if int(lab[0]) >= classes {
				f.Close()
				return Split{}, &FormatError{File: p, Msg: fmt.Sprintf("record %d: label %d, want 0 to %d", r, lab[0], classes-1)}
			}
			labels[k] = lab[0]
			k++
		}
		f.Close()
	}
	return Split{Images: imgs, Labels: labels, ImagesPath: files[0], LabelsPath: files[0]}, nil
}
