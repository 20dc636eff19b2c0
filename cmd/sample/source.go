package main

import (
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"io"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/imgrid"
)

// source is a checkpoint's model and, loaded on first use, its dataset:
// the test images alone, unless needTrain.
type source struct {
	m         *amortized.Model
	flags     modelFlags
	run       runinfo.RunInfo
	stderr    io.Writer // download progress
	ds        *data.Dataset
	needTrain bool // set before the first load by the tools that use training images
}

// openWithGrid opens the checkpoint and the image grid its pictures use.
func openWithGrid(f modelFlags, scale, columns int, stderr io.Writer) (*source, imgrid.Grid, error) {
	src, err := openSource(f, stderr)
	if err != nil {
		return nil, imgrid.Grid{}, err
	}
	g, err := imageGrid(src.m, scale, columns)
	return src, g, err
}

// testRange checks that test images first .. first+n-1 exist and returns them;
// what names the flags in the error.
func (s *source) testRange(first, n int, what string) ([][]float32, error) {
	if err := s.checkRange(first, n, what); err != nil {
		return nil, err
	}
	x, _, err := s.testImages(indexRange(first, n))
	return x, err
}

func openSource(f modelFlags, stderr io.Writer) (*source, error) {
	m, err := checkpoints.Load(f.ckpt)
	if err != nil {
		return nil, fmt.Errorf("-ckpt: %w", err)
	}
	run, _ := runinfo.RunOf(f.ckpt, m.Config())
	return &source{m: m, flags: f, run: run, stderr: stderr}, nil
}

// dataset loads the test images, and the training images if needTrain:
// the flags' dataset if given, else the training run's, else mnist.
func (s *source) dataset() (*data.Dataset, error) {
	if s.ds != nil && (s.ds.Train.Images != nil || !s.needTrain) {
		return s.ds, nil
	}
	name, dir := s.flags.dataset, s.flags.dataDir
	if name == "" {
		name = s.run.Dataset
	}
	if name == "" {
		name = "mnist"
	}
	label := ""
	if dir == "" && name == s.run.Dataset {
		dir, label = s.run.DataDir, data.SourceRun
	}
	lo := data.LoadOptions{Dir: dir, DirSource: label, Offline: s.flags.offline, Progress: s.stderr, TestOnly: !s.needTrain}
	if c := s.m.Config(); runinfo.IsImageFolder(dir) {
		// The size and channels the model was trained at.
		lo.Images = data.ImageFolderOptions{Rows: c.ImageRows, Cols: c.ImageCols, Channels: c.Shape().Channels}
	}
	ds, err := data.Load(name, lo)
	if err != nil {
		return nil, err
	}
	if d := ds.Test.Images.Dim(); d != s.m.DataDim() {
		return nil, fmt.Errorf("dataset %s (%s) has %dx%d images, but the model takes %d pixels; pick its dataset with -dataset or -data-dir",
			ds.Name, ds.Dir, ds.Test.Images.Rows, ds.Test.Images.Cols, s.m.DataDim())
	}
	s.ds = ds
	return ds, nil
}

// trainSet is dataset with the training images read too.
func (s *source) trainSet() (*data.Dataset, error) {
	s.needTrain = true
	return s.dataset()
}

func (s *source) binarization() data.Binarization {
	return runinfo.EvalBinarization(s.run, s.m.Config())
}

// testSize returns the number of test images, loading the data.
func (s *source) testSize() (int, error) {
	ds, err := s.dataset()
	if err != nil {
		return 0, err
	}
	return ds.Test.Images.N, nil
}

// checkRange reports a usage error, naming what, unless test images first
// to first+n-1 exist.
func (s *source) checkRange(first, n int, what string) error {
	size, err := s.testSize()
	if err != nil {
		return err
	}
	if first >= size || n > size-first { // not first+n: it may overflow
		return usagef("%s: out of range; the test set of %s has %d images, indices 0 to %d", what, s.ds.Name, size, size-1)
	}
	return nil
}

// testImages returns the test images at idx as the model sees them in
// evaluation (see binarization), and their labels.
func (s *source) testImages(idx []int) ([][]float32, []uint8, error) {
	ds, err := s.dataset()
	if err != nil {
		return nil, nil, err
	}
	l, err := data.NewLoader(ds.Test.Images, idx, data.LoaderOptions{Batch: len(idx), Seed: runinfo.EvalBinarizeSeed, Binarize: s.binarization()})
	if err != nil {
		return nil, nil, err
	}
	D := l.Dim()
	buf := make([]float32, len(idx)*D)
	if _, err := l.Batch(0, 0, buf); err != nil {
		return nil, nil, err
	}
	x := make([][]float32, len(idx))
	labels := make([]uint8, len(idx))
	for k, i := range idx {
		x[k] = buf[k*D : (k+1)*D : (k+1)*D]
		labels[k] = ds.Test.Labels[i]
	}
	return x, labels, nil
}

// trainMean is each pixel's mean over the training images, in [0,1]: the
// expected value of a pixel under any of the binarizations.
func (s *source) trainMean() ([]float32, error) {
	ds, err := s.trainSet()
	if err != nil {
		return nil, err
	}
	im := ds.Train.Images
	D := im.Dim()
	sum := make([]float64, D)
	for i := range im.N {
		for j, v := range im.Image(i) {
			sum[j] += float64(v)
		}
	}
	mean := make([]float32, D)
	for j, v := range sum {
		mean[j] = float32(v / (255 * float64(im.N)))
	}
	return mean, nil
}

// indexRange is first, first+1, ..., first+n-1.
func indexRange(first, n int) []int {
	idx := make([]int, n)
	for k := range idx {
		idx[k] = first + k
	}
	return idx
}

// imageGrid is the layout of every picture of images: 2 pixels of padding
// on a grey that stands apart from both black and white pixels. The number
// of channels is what the data size implies: 1 (grey) or 3 (RGB).
func imageGrid(m *amortized.Model, scale, columns int) (imgrid.Grid, error) {
	c := m.Config()
	if c.ImageRows == 0 {
		return imgrid.Grid{}, fmt.Errorf("the model's data are not images: its configuration has no image size (data_dim %d)", c.DataDim)
	}
	ch := c.DataDim / (c.ImageRows * c.ImageCols)
	if ch*c.ImageRows*c.ImageCols != c.DataDim || (ch != 1 && ch != 3) {
		return imgrid.Grid{}, fmt.Errorf("the model's data_dim %d is not 1 or 3 channels of %dx%d images", c.DataDim, c.ImageRows, c.ImageCols)
	}
	return imgrid.Grid{Rows: c.ImageRows, Cols: c.ImageCols, Channels: ch, Columns: columns, Pad: 2, Scale: scale, Background: 96}, nil
}

// chunk cuts n items into runs of at most per: [i, j) pairs.
func chunk(n, per int) [][2]int {
	var out [][2]int
	for i := 0; i < n; i += per {
		out = append(out, [2]int{i, min(i+per, n)})
	}
	return out
}
