package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func regressionData(n int, w []float64, noise float64, seed uint64) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 4))
	x := make([][]float64, n)
	t := make([]float64, n)
	for i := range x {
		x[i] = make([]float64, len(w))
		x[i][0] = 1
		for j := 1; j < len(w); j++ {
			x[i][j] = rng.NormFloat64()
		}
		for j := range w {
			t[i] += w[j] * x[i][j]
		}
		t[i] += noise * rng.NormFloat64()
	}
	return x, t
}

// With known precisions, q(w) is the exact posterior, here computed the
// other way round (function space, Woodbury):
// m = Phi^T (I/beta + Phi Phi^T/alpha)^-1 t / alpha.
func TestBLRKnownPrecisionIsExact(t *testing.T) {
	x, y := regressionData(40, []float64{0.5, -2, 1}, 0.3, 1)
	const alpha, beta = 2.0, 11.0
	r, err := FitBLR(context.Background(), x, y, BLROptions{Alpha: alpha, Beta: beta})
	if err != nil {
		t.Fatal(err)
	}
	n := len(x)
	X := mat.NewDense(n, 3, nil)
	for i := range x {
		X.SetRow(i, x[i])
	}
	var k mat.Dense
	k.Mul(X, X.T())
	k.Scale(1/alpha, &k)
	for i := 0; i < n; i++ {
		k.Set(i, i, k.At(i, i)+1/beta)
	}
	var sol mat.VecDense
	if err := sol.SolveVec(&k, mat.NewVecDense(n, y)); err != nil {
		t.Fatal(err)
	}
	var m mat.VecDense
	m.MulVec(X.T(), &sol)
	m.ScaleVec(1/alpha, &m)
	for j := 0; j < 3; j++ {
		if d := r.Mean[j] - m.AtVec(j); math.Abs(d) > 1e-10 {
			t.Errorf("mean %d: CAVI %.12g, exact %.12g", j, r.Mean[j], m.AtVec(j))
		}
	}
	// covariance: S = I/alpha - Phi^T (K)^-1 Phi / alpha^2
	var kinvX mat.Dense
	if err := kinvX.Solve(&k, X); err != nil {
		t.Fatal(err)
	}
	var s mat.Dense
	s.Mul(X.T(), &kinvX)
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			want := -s.At(i, j) / (alpha * alpha)
			if i == j {
				want += 1 / alpha
			}
			if d := r.Cov.At(i, j) - want; math.Abs(d) > 1e-10 {
				t.Errorf("cov %d,%d: %.12g, exact %.12g", i, j, r.Cov.At(i, j), want)
			}
		}
	}
	// With both precisions known the ELBO is log p(t) exactly: compare with
	// log N(t | 0, K).
	var ch mat.Cholesky
	ks := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			ks.SetSym(i, j, k.At(i, j))
		}
	}
	ch.Factorize(ks)
	logp := -0.5 * (float64(n)*math.Log(2*math.Pi) + ch.LogDet() + mat.Dot(mat.NewVecDense(n, y), &sol))
	if e := r.ELBO[len(r.ELBO)-1]; math.Abs(e-logp) > 1e-8*math.Abs(logp) {
		t.Errorf("ELBO %.10g, log p(t) %.10g", e, logp)
	}
}

func TestBLRUnknownPrecisionsMonotone(t *testing.T) {
	x, y := regressionData(200, []float64{1, 2, -1, 0.5}, 0.5, 2)
	r, err := FitBLR(context.Background(), x, y, BLROptions{Tol: -1, MaxIter: 50})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(r.ELBO); i++ {
		if r.ELBO[i] < r.ELBO[i-1]-1e-10*math.Abs(r.ELBO[i-1]) {
			t.Fatalf("ELBO fell at iteration %d: %.12g -> %.12g", i, r.ELBO[i-1], r.ELBO[i])
		}
	}
	if nsd := 1 / math.Sqrt(r.EBeta); math.Abs(nsd-0.5) > 0.08 {
		t.Errorf("noise sd %.3f, want about 0.5", nsd)
	}
	for j, w := range []float64{1, 2, -1, 0.5} {
		if math.Abs(r.Mean[j]-w) > 4*r.SD()[j]+0.02 {
			t.Errorf("w%d = %.3f ± %.3f, true %.3f", j, r.Mean[j], r.SD()[j], w)
		}
	}
}
