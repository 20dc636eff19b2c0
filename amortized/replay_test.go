package amortized

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestELBOWithNoiseMatchesReference checks ELBOWithNoise against the
// plain-Go ELBO at the given noise, and that it refuses noise of the wrong
// length or with a NaN.
func TestELBOWithNoiseMatchesReference(t *testing.T) {
	m := newSmall(t, "float64", Bernoulli, 4)
	const n, D, L = 5, 12, 3
	x := rowsOf(synthetic(n, D, 9), D)
	rng := rand.New(rand.NewPCG(1, 2))
	eps := make([]float64, n*L)
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	got, err := m.ELBOWithNoise(x, eps)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec, kl := ref{m}.elbo(f64(x[i]), eps[i*L:(i+1)*L])
		if want := rec - kl; math.Abs(got[i]-want) > 1e-10*math.Abs(want) {
			t.Errorf("row %d: ELBO %.12g, the reference %.12g", i, got[i], want)
		}
	}
	if _, err := m.ELBOWithNoise(x, eps[1:]); err == nil || !strings.Contains(err.Error(), "noise values") {
		t.Errorf("noise one value short: error %v", err)
	}
	eps[4] = math.NaN()
	if _, err := m.ELBOWithNoise(x, eps); err == nil {
		t.Error("NaN noise: no error")
	}
}

// TestSetNoiseReplaysTheSeededStreams trains one model with its seeded
// noise and a copy with SetNoise giving the same draws (the first rows·L of
// each step's stream): the weights must end bitwise equal, the partial
// last batch included. Other noise must give other weights.
func TestSetNoiseReplaysTheSeededStreams(t *testing.T) {
	const n, D, B, seed = 50, 12, 16, 7 // 3 full batches and one of 2 rows
	train := &memBatches{x: synthetic(n, D, 3), n: n, dim: D, bsz: B, seed: 5}
	fit := func(fill NoiseFunc) []float64 {
		m := newSmall(t, "float64", Bernoulli, 4)
		tr, err := NewTrainer(m, B, TrainOptions{Epochs: 2, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.SetNoise(fill); err != nil {
			t.Fatal(err)
		}
		if err := tr.Fit(context.Background(), train, nil, Hooks{}); err != nil {
			t.Fatal(err)
		}
		var w []float64
		for _, p := range m.Params().All() {
			w = append(w, p.Float64s()...)
		}
		return w
	}
	steps := 0
	stream := func(step int64, rows int, eps []float64) error {
		if len(eps) != rows*3 {
			t.Fatalf("step %d: %d noise values for %d rows", step, len(eps), rows)
		}
		steps++
		rng := rand.New(rand.NewPCG(seed, streamTrain+uint64(step)))
		for i := range eps {
			eps[i] = rng.NormFloat64()
		}
		return nil
	}
	want := fit(nil)
	if got := fit(stream); !slices.Equal(got, want) {
		t.Error("replaying the seeded streams changed the weights")
	}
	if steps != 8 {
		t.Errorf("the noise was asked for %d times, want 8 (2 epochs of 4 batches)", steps)
	}
	other := func(step int64, rows int, eps []float64) error {
		rng := rand.New(rand.NewPCG(seed+1, uint64(step)))
		for i := range eps {
			eps[i] = rng.NormFloat64()
		}
		return nil
	}
	if slices.Equal(fit(other), want) {
		t.Error("other noise gave the same weights: the replayed noise is not used")
	}
}
