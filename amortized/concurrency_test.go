package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// TestModelConcurrentUse calls every public method of one Model from 8
// goroutines at once; run with -race it checks that the model is safe for
// concurrent use, and each result must equal the one computed alone.
func TestModelConcurrentUse(t *testing.T) {
	cfg := Config{DataDim: 12, Hidden: []int{8}, Latent: 3, Posterior: "iaf:1"}
	// Two identical models: the answers computed alone on one, the
	// concurrent calls on a fresh one, so that they also race to build
	// (and cache) the graphs.
	alone, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := rowsOf(synthetic(6, 12, 2), 12)
	obs := make([][]bool, len(x))
	for i := range obs {
		obs[i] = make([]bool, 12)
		for j := range obs[i] {
			obs[i][j] = j%3 != 0
		}
	}
	z := [][]float32{{0, 1, -1}, {0.5, 0, 2}}
	rng := func() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
	calls := func(m *Model) []func() (any, error) {
		return []func() (any, error){
			func() (any, error) { return m.Encode(x) },
			func() (any, error) { return m.Decode(z) },
			func() (any, error) { return m.Sample(4, rng()) },
			func() (any, error) { return m.Reconstruct(x, rng()) },
			func() (any, error) { return m.ELBO(x, rng()) },
			func() (any, error) { return m.LogLikelihood(x, 30, rng()) },
			func() (any, error) {
				return m.Impute(x, obs, ImputeOptions{Iters: 3, Chains: 2}, rng())
			},
			func() (any, error) {
				r, err := m.LocalELBO(x[:2], LocalOptions{Steps: 3, Samples: 2, EvalSamples: 5}, rng())
				return r.LocalELBO, err
			},
			func() (any, error) {
				return m.Evaluate(&memBatches{x: synthetic(6, 12, 2), n: 6, dim: 12, bsz: 4, seed: 1}, rng())
			},
			func() (any, error) { return fmt.Sprint(m.Config(), m.LatentDim(), m.DataDim(), m.AnalyticKL()), nil },
		}
	}
	want := make([]string, len(calls(alone)))
	for i, c := range calls(alone) {
		v, err := c()
		if err != nil {
			t.Fatal(i, err)
		}
		want[i] = fmt.Sprint(v)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(want))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := calls(m)
			for j := range cs {
				i := (g + j) % len(cs)
				v, err := cs[i]()
				if err != nil {
					errs <- err
					continue
				}
				if got := fmt.Sprint(v); got != want[i] {
					errs <- fmt.Errorf("call %d gave %s concurrently, %s alone", i, got, want[i])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHugeArgumentsRefusedBeforeAllocating: sizes that would allocate more
// than MaxValues values are refused with the argument and the limit named.
func TestHugeArgumentsRefusedBeforeAllocating(t *testing.T) {
	m, err := New(Config{DataDim: 12, Hidden: []int{8}, Latent: 3}, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := rowsOf(synthetic(2, 12, 2), 12)
	obs := [][]bool{make([]bool, 12), make([]bool, 12)}
	if _, err := m.Sample(math.MaxInt, rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), "Sample: n asks for") || !strings.Contains(err.Error(), fmt.Sprint(MaxValues)) {
		t.Errorf("Sample(MaxInt): %v", err)
	}
	if _, err := m.Impute(x, obs, ImputeOptions{Chains: math.MaxInt / 2}, rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), "Impute: Chains =") {
		t.Errorf("Impute with huge Chains: %v", err)
	}
}
