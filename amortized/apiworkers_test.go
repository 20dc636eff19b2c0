package amortized

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// apiOutputs runs every chunked call of the API on x (more rows than one
// chunk) with fixed seeds and returns all the numbers, in order.
func apiOutputs(t *testing.T, m *Model, x [][]float32) []float64 {
	t.Helper()
	var out []float64
	rows := func(v [][]float32, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range v {
			for _, f := range r {
				out = append(out, float64(f))
			}
		}
	}
	rng := func(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, 3)) }
	z, err := m.Encode(x)
	rows(z, err)
	rows(m.Decode(z))
	rows(m.Reconstruct(x, rng(1)))
	rows(m.Sample(len(x), rng(2)))
	elbo, err := m.ELBO(x, rng(3))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, elbo...)
	ll, err := m.LogLikelihood(x[:40], 30, rng(4))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, ll...)
	obs := make([][]bool, len(x))
	for i := range obs {
		obs[i] = make([]bool, len(x[i]))
		for j := range obs[i] {
			obs[i][j] = (i+j)%3 != 0
		}
	}
	rows(m.Impute(x, obs, ImputeOptions{Iters: 3, Chains: 2}, rng(5)))
	rows(m.Impute(x, obs, ImputeOptions{Iters: 2, Mean: true}, nil))
	return out
}

// TestAPIWorkersGiveIdenticalOutputs: the API's calls spread their chunks
// over the cores (parChunks); one worker and two give the same numbers,
// bit for bit, and the same for a second call on the same model (the
// replicas' weights are refreshed, and reused graphs hold no state).
func TestAPIWorkersGiveIdenticalOutputs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const n = 2*evalChunk + 37 // three chunks, the last padded
	for _, cfg := range []Config{
		smallConfig("float32", Bernoulli),
		{DataDim: 12, Hidden: []int{9}, Latent: 3, Posterior: "planar:2", Prior: "mog:3", Likelihood: Gaussian, Dtype: "float64"},
		{DataDim: 12, Hidden: []int{9}, Latent: 3, Posterior: "mixture:3"}, // stratified: Reconstruct's z is its plain draw
	} {
		m, err := New(cfg, 4)
		if err != nil {
			t.Fatal(err)
		}
		x := rowsOf(synthetic(n, cfg.DataDim, 2), cfg.DataDim)
		runtime.GOMAXPROCS(1)
		one := apiOutputs(t, m, x)
		runtime.GOMAXPROCS(2)
		two := apiOutputs(t, m, x)
		again := apiOutputs(t, m, x)
		// Impute's chunks in turn, drawing as they go (the path for many
		// sweeps): the same draws as drawn ahead.
		ahead := imputeAhead
		imputeAhead = 0
		serial := apiOutputs(t, m, x)
		imputeAhead = ahead
		for i := range one {
			if math.Float64bits(one[i]) != math.Float64bits(two[i]) || math.Float64bits(two[i]) != math.Float64bits(again[i]) || math.Float64bits(two[i]) != math.Float64bits(serial[i]) {
				t.Fatalf("%s: output %d: one worker %v, two %v, two again %v, Impute serial %v", cfg.Posterior, i, one[i], two[i], again[i], serial[i])
			}
		}
	}
}
