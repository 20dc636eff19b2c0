package checkpoints

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
)

// TestBayesDecoderRoundTrip: a Bayesian decoder's means and scales
// (decoder.*.rho), its prior's sigma and the optimizer's moments survive a
// save and load, and training resumed from the file takes the same steps
// (the same weight draws) as training without the interruption.
func TestBayesDecoderRoundTrip(t *testing.T) {
	cfg := tinyConfig()
	cfg.DecoderPriorSigma = 0.5
	x := make([]float32, 10*16)
	for i := range x {
		x[i] = float32((i / 16 % 2) ^ (i % 2))
	}
	opts := amortized.TrainOptions{Epochs: 1, Seed: 5}
	train := func(m *amortized.Model, st *amortized.TrainState, epochs int) *amortized.Trainer {
		o := opts
		o.Epochs = epochs
		tr, err := amortized.NewTrainer(m, 4, o, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Fit(context.Background(), tinyBatches{x}, nil, amortized.Hooks{}); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	m, err := amortized.New(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	tr := train(m, nil, 1)
	path := filepath.Join(t.TempDir(), "bayes.safetensors")
	st := tr.State()
	if err := Save(path, m, &st); err != nil {
		t.Fatal(err)
	}
	got, gst, err := LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Config(); c.DecoderPriorSigma != 0.5 || !got.BayesDecoder() {
		t.Fatalf("loaded config has decoder_prior_sigma %g", c.DecoderPriorSigma)
	}
	rhos := 0
	for i, p := range m.Params().All() {
		q := got.Params().All()[i]
		if p.Name != q.Name || !p.Value.Eq(q.Value) {
			t.Fatalf("tensor %s differs after load", p.Name)
		}
		if strings.HasPrefix(p.Name, "decoder.") && strings.HasSuffix(p.Name, ".rho") {
			rhos++
		}
	}
	if rhos == 0 {
		t.Fatal("no decoder.*.rho tensors saved")
	}
	if got.GlobalKL() != m.GlobalKL() {
		t.Fatalf("global KL %v after load, %v before", got.GlobalKL(), m.GlobalKL())
	}
	if _, c, _, err := Inspect(path); err != nil || c.DecoderPriorSigma != 0.5 {
		t.Fatalf("Inspect: decoder_prior_sigma %g, %v", c.DecoderPriorSigma, err)
	}

	// Resume: the second epoch from the file equals a straight two-epoch run.
	train(got, gst, 2)
	straight, _ := amortized.New(cfg, 2)
	train(straight, nil, 2)
	for i, p := range straight.Params().All() {
		if !p.Value.Eq(got.Params().All()[i].Value) {
			t.Fatalf("resumed run differs from the straight one at %s", p.Name)
		}
	}
	// The mean decoder is what Decode uses: a weight draw decodes differently.
	z := [][]float32{{0.3, -1.2}}
	a, _ := got.Decode(z)
	wd, err := got.NewWeightDraws(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := wd.Next().Decode(z)
	c, _ := got.Decode(z)
	same := true
	for j := range a[0] {
		same = same && a[0][j] == b[0][j]
		if a[0][j] != c[0][j] {
			t.Fatal("Decode changed after a weight draw")
		}
	}
	if same {
		t.Fatal("a weight draw decodes exactly as the mean weights")
	}
}
