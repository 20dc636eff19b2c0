package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// gaussianModel is a correlated Gaussian target N(m, S) on the real line.
func gaussianModel(m []float64, s [][]float64) *Model {
	d := len(m)
	S := mat.NewSymDense(d, nil)
	for i := range s {
		for j := i; j < d; j++ {
			S.SetSym(i, j, s[i][j])
		}
	}
	var prec mat.SymDense
	var ch mat.Cholesky
	ch.Factorize(S)
	ch.InverseTo(&prec)
	f := func(x, g []float64) float64 {
		var v float64
		for i := range x {
			g[i] = 0
			for j := range x {
				g[i] -= prec.At(i, j) * (x[j] - m[j])
			}
			v += 0.5 * g[i] * (x[i] - m[i])
		}
		return v
	}
	return &Model{Name: "gauss", Density: FuncDensity{D: d, F: f}, Constraints: []Constraint{{Kind: Real, Size: d}}}
}

func TestADVIFullRankRecoversGaussian(t *testing.T) {
	m := []float64{1, -2, 0.5}
	s := [][]float64{{1, 0.6, -0.3}, {0.6, 2, 0.4}, {-0.3, 0.4, 0.5}}
	a, err := FitADVI(context.Background(), gaussianModel(m, s), ADVIOptions{FullRank: true, Steps: 20000, Samples: 4, Eta: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Cov()
	for i := range m {
		if math.Abs(a.Mu[i]-m[i]) > 0.05 {
			t.Errorf("mean %d: %.4f, want %.4f", i, a.Mu[i], m[i])
		}
		for j := range m {
			if math.Abs(c[i][j]-s[i][j]) > 0.08*math.Sqrt(s[i][i]*s[j][j]) {
				t.Errorf("cov %d,%d: %.4f, want %.4f", i, j, c[i][j], s[i][j])
			}
		}
	}
	// log Z of the unnormalized target is log((2 pi)^(d/2) |S|^(1/2)); at
	// q = p the ELBO equals it.
	S := mat.NewSymDense(3, nil)
	for i := range s {
		for j := i; j < 3; j++ {
			S.SetSym(i, j, s[i][j])
		}
	}
	var ch mat.Cholesky
	ch.Factorize(S)
	logZ := 1.5*math.Log(2*math.Pi) + 0.5*ch.LogDet()
	e, err := a.ELBOEstimate(20000, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if e > logZ+0.01 || e < logZ-0.02 {
		t.Errorf("ELBO %.4f, log Z %.4f", e, logZ)
	}
}

// Mean-field on a correlated Gaussian: the known answer is the mean and
// the conditional variances 1/Lambda_ii (Bishop 10.1.2), under-dispersed.
func TestADVIMeanFieldGaussian(t *testing.T) {
	m := []float64{1, -1}
	s := [][]float64{{1, 0.8}, {0.8, 1}}
	a, err := FitADVI(context.Background(), gaussianModel(m, s), ADVIOptions{Steps: 20000, Samples: 4, Eta: 0.5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := 1 - 0.8*0.8 // 1/Lambda_ii
	c := a.Cov()
	for i := range m {
		if math.Abs(a.Mu[i]-m[i]) > 0.05 || math.Abs(c[i][i]-want) > 0.05*want {
			t.Errorf("coordinate %d: mean %.4f var %.4f, want %.4f and %.4f", i, a.Mu[i], c[i][i], m[i], want)
		}
	}
}

// On Bayesian logistic regression, full-rank ADVI and SVGD (two unrelated
// methods) agree on the posterior's means and spreads, and the
// Jaakkola-Jordan q(w) is narrower than both, as doc.go says.
func TestBlackBoxMethodsAgreeOnLogistic(t *testing.T) {
	x, y := logisticData(200, []float64{0.5, 1.5, -1}, 7)
	m, err := LogisticModel(x, y, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := FitADVI(context.Background(), m, ADVIOptions{FullRank: true, Steps: 3000, Eta: 0.3, Seed: 1, EvalEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	am, asd := MeanSD(a.Sample(4000, rand.New(rand.NewPCG(1, 2))))
	s, err := FitSVGD(context.Background(), m, SVGDOptions{Particles: 50, Steps: 300, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	sm, ssd := MeanSD(s.Theta)
	jj, err := FitLogistic(context.Background(), x, y, LogisticOptions{Alpha: 1})
	if err != nil {
		t.Fatal(err)
	}
	jsd := jj.SD()
	for j := range am {
		if math.Abs(am[j]-sm[j]) > 0.3*asd[j] || math.Abs(asd[j]-ssd[j]) > 0.25*asd[j] {
			t.Errorf("w%d: ADVI %.3f ± %.3f, SVGD %.3f ± %.3f", j, am[j], asd[j], sm[j], ssd[j])
		}
		if jsd[j] >= asd[j] {
			t.Errorf("w%d: Jaakkola-Jordan sd %.3f not below ADVI's %.3f", j, jsd[j], asd[j])
		}
	}
}
