package amortized

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestLogLikelihoodReusesCopies: the weight copies (and graphs, whose packed
// output weights must be packed again) LogLikelihood's workers
// keep for the next call (workerCopies) carry the model's current weights,
// so a call after the weights changed gives what a model that never made a
// call gives, bit for bit, and concurrent calls on one model agree.
func TestLogLikelihoodReusesCopies(t *testing.T) {
	cfg := ReferenceConfig()
	cfg.Hidden = []int{64}
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := rowsOf(synthetic(6, cfg.DataDim, 5), cfg.DataDim)
	ll := func(m *Model) []float64 {
		t.Helper()
		v, err := m.LogLikelihood(x, 700, rand.New(rand.NewPCG(9, 9)))
		if err != nil {
			t.Error(err)
		}
		return v
	}
	before := ll(m)
	if len(m.spare) == 0 {
		t.Fatal("no weight copies kept after a call")
	}
	shift := func(m *Model) {
		for _, p := range m.params.All() {
			for i, v := range p.Value.Data().([]float32) {
				p.Value.Data().([]float32)[i] = v + 0.01*float32(i%7)
			}
		}
	}
	shift(m)
	fresh, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	shift(fresh)
	want := ll(fresh)
	got := ll(m)
	if slices.Equal(want, before) {
		t.Fatal("changing the weights did not change log p(x): the test cannot tell stale copies")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the weights changed, log p(x) %v with kept copies, want %v (a fresh model's)", got, want)
	}
	var wg sync.WaitGroup
	res := make([][]float64, 3)
	for i := range res {
		wg.Go(func() { res[i] = ll(m) })
	}
	wg.Wait()
	for i, r := range res {
		if !slices.Equal(r, want) {
			t.Fatalf("concurrent call %d: %v, want %v", i, r, want)
		}
	}
}
