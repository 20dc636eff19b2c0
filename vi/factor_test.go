package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFactorMonotoneAndCovariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n, d, l = 2000, 6, 2
	w := [][]float64{{1, 0}, {0.8, 0.3}, {0.5, -1}, {0, 1.2}, {-0.7, 0.4}, {0.2, 0.2}}
	sd := []float64{0.3, 0.5, 0.2, 0.4, 0.3, 0.6}
	x := make([][]float64, n)
	for i := range x {
		z := []float64{rng.NormFloat64(), rng.NormFloat64()}
		x[i] = make([]float64, d)
		for j := 0; j < d; j++ {
			x[i][j] = 3 + w[j][0]*z[0] + w[j][1]*z[1] + sd[j]*rng.NormFloat64()
		}
	}
	f, err := FitFactor(context.Background(), x, FactorOptions{L: l, Seed: 1, Tol: -1, MaxIter: 300})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(f.ELBO); i++ {
		if f.ELBO[i] < f.ELBO[i-1]-1e-10*math.Abs(f.ELBO[i-1]) {
			t.Fatalf("ELBO fell at iteration %d: %.12g -> %.12g", i, f.ELBO[i-1], f.ELBO[i])
		}
	}
	c := f.Covariance()
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			want := w[i][0]*w[j][0] + w[i][1]*w[j][1]
			if i == j {
				want += sd[i] * sd[i]
			}
			if math.Abs(c.At(i, j)-want) > 0.12 {
				t.Errorf("cov %d,%d: %.3f, true %.3f", i, j, c.At(i, j), want)
			}
		}
	}
	for j := 0; j < d; j++ {
		if got := math.Sqrt(f.B[j] / f.A[j]); math.Abs(got-sd[j]) > 0.1 {
			t.Errorf("noise sd %d: %.3f, true %.3f", j, got, sd[j])
		}
	}
}
