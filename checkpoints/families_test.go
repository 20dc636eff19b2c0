package checkpoints_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/synth"
)

// TestEveryPartRoundTrips trains a tiny model of each posterior family and
// each learned prior on synthetic images, saves it with its training state,
// loads it back as a user would (checkpoints.Load), and requires every
// method of the public API to give the very same numbers before and after,
// with the same random streams; the stored configuration keeps the
// canonical posterior and the prior.
func TestEveryPartRoundTrips(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 64, 8); err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, err := data.NewLoader(ds.Train.Images, nil, data.LoaderOptions{Batch: 16, Seed: 1, Shuffle: true, Binarize: data.BinarizeDynamic})
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.NewLoader(ds.Test.Images, nil, data.LoaderOptions{Batch: 8, Seed: 0, Binarize: data.BinarizeStatic})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 8*16)
	n, err := test.Batch(0, 0, buf)
	if err != nil {
		t.Fatal(err)
	}
	x := make([][]float32, n)
	observed := make([][]bool, n)
	for i := range x {
		x[i] = buf[i*16 : (i+1)*16]
		observed[i] = make([]bool, 16)
		for j := range observed[i] {
			observed[i][j] = j < 8
		}
	}
	for _, tc := range []struct{ post, prior, stored string }{
		{"diag", "", "diag"}, {"fullcov", "", "fullcov"}, {"planar:2", "", "planar:2"}, {"radial:2", "", "radial:2"}, {"iaf:2", "", "iaf:2:7"},
		// q(z1|x) q(z2|z1), p(z2) p(z1|z2) p(x|z1)
		{"twolayer:2:3", amortized.TwoLayer + ":3", "twolayer:2:3"},
		// The learned priors (vamp:K:data starts at training images).
		{"diag", "mog:3", "diag"}, {"diag", "vamp:4", "diag"}, {"fullcov", "vamp:3:data", "fullcov"},
	} {
		t.Run(tc.post+"/"+tc.prior, func(t *testing.T) {
			cfg := amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{8}, Latent: 3, Posterior: tc.post, Prior: tc.prior}
			m, err := amortized.New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			if m.WantsData() {
				if err := m.InitFromData(x, 1); err != nil {
					t.Fatal(err)
				}
			}
			tr, err := amortized.NewTrainer(m, 16, amortized.TrainOptions{Epochs: 2, LR: 1e-2, Seed: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Fit(context.Background(), train, nil, amortized.Hooks{}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "model.safetensors")
			st := tr.State()
			if err := checkpoints.Save(path, m, &st); err != nil {
				t.Fatal(err)
			}
			got, err := checkpoints.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config().Posterior != tc.stored || m.Config().Posterior != tc.stored {
				t.Errorf("posterior %q saved, %q loaded; want %q", m.Config().Posterior, got.Config().Posterior, tc.stored)
			}
			if got.Config().Prior != tc.prior || m.Config().Prior != tc.prior {
				t.Errorf("prior %q saved, %q loaded; want %q", m.Config().Prior, got.Config().Prior, tc.prior)
			}
			if _, cfg, _, err := checkpoints.Inspect(path); err != nil || cfg.Posterior != tc.stored || cfg.Prior != tc.prior {
				t.Errorf("Inspect: posterior %q, prior %q, %v", cfg.Posterior, cfg.Prior, err)
			}
			if strings.HasPrefix(tc.prior, "vamp") && got.Params().Get("prior.pseudo") == nil {
				t.Error("the loaded model has no prior.pseudo")
			}
			if _, lst, err := checkpoints.LoadTraining(path); err != nil || lst.Step != st.Step {
				t.Errorf("LoadTraining: %v", err)
			}
			results := func(m *amortized.Model) map[string]any {
				out := map[string]any{}
				rng := func() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }
				record := func(name string, v any, err error) {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					out[name] = v
				}
				v1, err := m.ELBO(x, rng())
				record("ELBO", v1, err)
				ll, se, err := m.LogLikelihoodSE(x, 30, rng())
				record("LogLikelihood", [][]float64{ll, se}, err)
				v3, err := m.Encode(x)
				record("Encode", v3, err)
				v4, err := m.Reconstruct(x, rng())
				record("Reconstruct", v4, err)
				v5, err := m.Impute(x, observed, amortized.ImputeOptions{Iters: 3}, rng())
				record("Impute", v5, err)
				v6, err := m.Decode(v3)
				record("Decode", v6, err)
				v7, err := m.Sample(4, rng())
				record("Sample", v7, err)
				v8, err := m.Evaluate(test, rng())
				record("Evaluate", v8, err)
				return out
			}
			before, after := results(m), results(got)
			for name, v := range before {
				if !reflect.DeepEqual(v, after[name]) {
					t.Errorf("%s differs after the round trip:\n%v\n%v", name, v, after[name])
				}
			}
			for i, v := range before["ELBO"].([]float64) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("ELBO[%d] = %v", i, v)
				}
			}
		})
	}
}
