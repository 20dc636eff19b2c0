package amortized

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSumLossIsTheSum: with SumLoss a step's gradient is rows times the
// mean loss's. On full batches of a power-of-two size that scaling is
// exact, and Adam's update is invariant to it but for epsilon, so SumLoss
// with epsilon e takes bit for bit the steps of the mean loss with e/rows;
// and on a partial batch the first moment after one step is (1-b1) rows g.
func TestSumLossIsTheSum(t *testing.T) {
	const rows, eps = 8, 1e-3 // eps large enough to matter for these gradients
	x := synthetic(rows, 12, 4)
	for _, dtype := range []string{"float32", "float64"} {
		train := func(o TrainOptions, steps int) []float64 {
			m := newSmall(t, dtype, Bernoulli, 5)
			o.Epochs, o.Seed = 1, 9
			tr, err := NewTrainer(m, rows, o, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for range steps {
				if _, err := tr.Step(x, rows, 1); err != nil {
					t.Fatal(err)
				}
			}
			var w []float64
			for _, p := range m.params.All() {
				w = tensorValues(p.Value, w)
			}
			return w
		}
		sum := train(TrainOptions{SumLoss: true, AdamEps: eps}, 3)
		same := train(TrainOptions{AdamEps: eps / rows}, 3)
		mean := train(TrainOptions{AdamEps: eps}, 3)
		differs := false
		for i := range sum {
			if math.Float64bits(sum[i]) != math.Float64bits(same[i]) {
				t.Fatalf("%s: weight %d: SumLoss with eps %g gives %v, the mean loss with eps %g/%d %v", dtype, i, eps, sum[i], eps, rows, same[i])
			}
			differs = differs || sum[i] != mean[i]
		}
		if !differs {
			t.Fatalf("%s: SumLoss changed no weight against the mean loss with the same eps", dtype)
		}
	}

	// A partial batch: 3 of 8 rows.
	const part = 3
	m := newSmall(t, "float64", Bernoulli, 5)
	tr, err := NewTrainer(m, rows, TrainOptions{Epochs: 1, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.gradients(x, part, 1, rand.New(rand.NewPCG(9, streamTrain))); err != nil {
		t.Fatal(err)
	}
	var g []float64
	for _, gt := range tr.batchGrads() {
		g = tensorValues(gt, g)
	}
	ms := newSmall(t, "float64", Bernoulli, 5)
	ts, err := NewTrainer(ms, rows, TrainOptions{Epochs: 1, Seed: 9, SumLoss: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if _, err := ts.Step(x, part, 1); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range ts.adam.M.All() {
		got = tensorValues(p.Value, got)
	}
	b1 := ts.opts.Beta1
	for i := range g {
		want := (1 - b1) * part * g[i]
		if math.Abs(got[i]-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Fatalf("first moment %d after a step on %d rows: %v, want (1-b1) %d g = %v", i, part, got[i], part, want)
		}
	}
}
