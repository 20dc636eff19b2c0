package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func logisticData(n int, w []float64, seed uint64) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 6))
	x := make([][]float64, n)
	y := make([]float64, n)
	for i := range x {
		x[i] = make([]float64, len(w))
		x[i][0] = 1
		var s float64
		for j := range w {
			if j > 0 {
				x[i][j] = rng.NormFloat64()
			}
			s += w[j] * x[i][j]
		}
		if rng.Float64() < 1/(1+math.Exp(-s)) {
			y[i] = 1
		}
	}
	return x, y
}

func TestLogisticJJ(t *testing.T) {
	x, y := logisticData(500, []float64{-0.5, 2, -1}, 1)
	r, err := FitLogistic(context.Background(), x, y, LogisticOptions{Tol: -1, MaxIter: 60})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(r.ELBO); i++ {
		if r.ELBO[i] < r.ELBO[i-1]-1e-10*math.Abs(r.ELBO[i-1]) {
			t.Fatalf("bound fell at iteration %d: %.12g -> %.12g", i, r.ELBO[i-1], r.ELBO[i])
		}
	}
	// The bound lies below the exact ELBO E_q[log p(y|w)] + E_q[log p(w)] + H[q],
	// here by Monte Carlo, and below log p(y).
	rng := rand.New(rand.NewPCG(2, 2))
	var ll float64
	const draws = 4000
	for s := 0; s < draws; s++ {
		w := normalRand(r.Mean, r.Cov, rng)
		for n, row := range x {
			var a float64
			for j := range row {
				a += row[j] * w[j]
			}
			ll += logSigmoid((2*y[n] - 1) * a)
		}
	}
	ll /= draws
	s := newJJ(3, 1)
	s.mean.SetRawVector(mat.NewVecDense(3, append([]float64(nil), r.Mean...)).RawVector())
	s.cov = r.Cov
	var jj float64
	for n, row := range x {
		xi := s.xi(row)
		var a float64
		for j := range row {
			a += row[j] * r.Mean[j]
		}
		jj += logSigmoid(xi) + (y[n]-0.5)*a - xi/2
	}
	if jj > ll+1e-6 {
		t.Errorf("JJ expected log-likelihood %.4f above the Monte Carlo one %.4f", jj, ll)
	}
	for j, w := range []float64{-0.5, 2, -1} {
		if math.Abs(r.Mean[j]-w) > 4*r.SD()[j] {
			t.Errorf("w%d = %.3f ± %.3f, true %.3f", j, r.Mean[j], r.SD()[j], w)
		}
	}
}

func TestLogisticSVIAgreesWithCAVI(t *testing.T) {
	x, y := logisticData(5000, []float64{0.3, 1.5, -1}, 3)
	c, err := FitLogistic(context.Background(), x, y, LogisticOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := FitLogisticSVI(context.Background(), x, y, LogisticOptions{}, SVIOptions{Batch: 500, Steps: 1500, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for j := range c.Mean {
		if d := math.Abs(c.Mean[j] - s.Mean[j]); d > 0.25*c.SD()[j] {
			t.Errorf("w%d: CAVI %.4f ± %.4f, SVI %.4f", j, c.Mean[j], c.SD()[j], s.Mean[j])
		}
	}
	ce, se := c.ELBO[len(c.ELBO)-1], s.ELBO[len(s.ELBO)-1]
	if se > ce+1e-6*math.Abs(ce) || ce-se > 0.5 {
		t.Errorf("bound: CAVI %.5f, SVI %.5f", ce, se)
	}
}
