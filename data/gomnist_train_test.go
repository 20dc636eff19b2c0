package data_test

import (
	"math"
	"os"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
)

// One training step on the full MNIST from the GoMNIST module, found the
// way cmd/train finds it with no flag and no environment.
func TestTrainStepOnGoMNIST(t *testing.T) {
	if data.RaceEnabled {
		t.Skip("20 s under -race; the data race tests are elsewhere")
	}
	t.Setenv(data.EnvData, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ds, err := data.Load("mnist", data.LoadOptions{Offline: true})
	if err != nil {
		t.Skipf("no GoMNIST copy in the module cache (%v)", err)
	}
	if ds.Source != data.SourceModule {
		if _, err := os.Stat("/usr/share/datasets/mnist"); err == nil {
			t.Skipf("loaded %s, not the GoMNIST copy", ds.Description())
		}
		t.Fatalf("loaded %s, want the GoMNIST copy", ds.Description())
	}
	if ds.Train.Images.N != 60000 {
		t.Fatalf("%d training images, want 60000", ds.Train.Images.N)
	}
	const batch = 64
	l, err := data.NewLoader(ds.Train.Images, nil, data.LoaderOptions{Batch: batch, Seed: 1, Shuffle: true, Binarize: data.BinarizeDynamic})
	if err != nil {
		t.Fatal(err)
	}
	im := ds.Train.Images
	m, err := amortized.New(amortized.Config{DataDim: im.Dim(), ImageRows: im.Rows, ImageCols: im.Cols, Hidden: []int{64}, Latent: 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := amortized.NewTrainer(m, batch, amortized.TrainOptions{Epochs: 1, LR: 1e-3, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	x := make([]float32, batch*l.Dim())
	var first, last float64
	for b := range 20 {
		n, err := l.Batch(0, b, x)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tr.Step(x, n, 1)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(s.Bound) || s.Bound >= 0 {
			t.Fatalf("step %d: ELBO %g, want finite and negative (Bernoulli)", b, s.Bound)
		}
		if b == 0 {
			first = s.Bound
		}
		last = s.Bound
	}
	// 20 Adam steps from random weights raise the ELBO a lot (from about
	// -543 nats, the untrained decoder's -784 log 2, upwards).
	if !(last > first+50) {
		t.Errorf("ELBO went from %.1f to %.1f in 20 steps, want a rise of over 50 nats", first, last)
	}
}
