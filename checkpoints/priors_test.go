package checkpoints_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/synth"
)

// TestEveryPriorRoundTrips: a tiny model with each learned prior, trained,
// saved and loaded back (checkpoints.Load), gives the very same ELBO,
// log p(x), samples and every other method's results, and keeps its prior.
func TestEveryPriorRoundTrips(t *testing.T) {
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
	for _, tc := range []struct{ post, prior string }{
		{"diag", "mog:3"}, {"diag", "vamp:4"}, {"fullcov", "vamp:3:data"},
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
			if got.Config().Prior != tc.prior || m.Config().Prior != tc.prior {
				t.Errorf("prior %q saved, %q loaded; want %q", m.Config().Prior, got.Config().Prior, tc.prior)
			}
			if _, cfg, _, err := checkpoints.Inspect(path); err != nil || cfg.Prior != tc.prior {
				t.Errorf("Inspect: prior %q, %v", cfg.Prior, err)
			}
			if p := got.Params().Get("prior.pseudo"); p == nil && tc.prior != "mog:3" {
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
