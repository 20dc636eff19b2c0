package vi

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// svLogProb is the SV log density written directly (constants as in the graph).
func svLogProb(y, th []float64) float64 {
	mu, phi, sigma, h := th[0], th[1], th[2], th[3:]
	var lp float64
	for t, v := range y {
		lp += -0.5 * (h[t] + v*v*math.Exp(-h[t]))
	}
	for t := 1; t < len(h); t++ {
		r := h[t] - mu - phi*(h[t-1]-mu)
		lp += -0.5*r*r/(sigma*sigma) - math.Log(sigma)
	}
	v0 := sigma * sigma / (1 - phi*phi)
	lp += -0.5*math.Log(v0) - 0.5*(h[0]-mu)*(h[0]-mu)/v0
	return lp - 0.5*mu*mu/(svMuSD*svMuSD) - svSigmaRate*sigma
}

func bnnLogProb(x [][]float64, y []float64, H int, s float64, th []float64) float64 {
	p := len(x[0])
	var lp float64
	for n, row := range x {
		a := th[len(th)-1]
		for j := 0; j < H; j++ {
			u := th[H*p+j]
			for i := 0; i < p; i++ {
				u += th[j*p+i] * row[i]
			}
			a += th[H*p+H+j] * math.Tanh(u)
		}
		lp += y[n]*a + logSigmoid(-a)
	}
	for _, v := range th {
		lp -= v * v / (2 * s * s)
	}
	return lp
}

// The gorgonia densities against the same densities written in Go, and
// their gradients against finite differences.
func TestGraphDensities(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	x, y := logisticData(30, []float64{0.5, -1, 2}, 1)
	lm, err := LogisticModel(x, y, 2)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := BNNModel(x, y, 3, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	ret := make([]float64, 20)
	for i := range ret {
		ret[i] = 0.5 * rng.NormFloat64()
	}
	sm, err := SVModel(ret)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		m      *Model
		direct func([]float64) float64
	}{
		{lm, func(w []float64) float64 {
			var lp float64
			for n, row := range x {
				a := row[0]*w[0] + row[1]*w[1] + row[2]*w[2]
				lp += y[n]*a + logSigmoid(-a)
			}
			return lp - (w[0]*w[0]+w[1]*w[1]+w[2]*w[2])/8
		}},
		{bm, func(th []float64) float64 { return bnnLogProb(x, y, 3, 1.5, th) }},
		{sm, func(th []float64) float64 { return svLogProb(ret, th) }},
	}
	for _, tc := range cases {
		tr, err := NewTransform(tc.m.Constraints...)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Dim() != tc.m.Density.Dim() || len(tc.m.Params) != tr.Dim() {
			t.Fatalf("%s: dims %d, %d, %d names", tc.m.Name, tr.Dim(), tc.m.Density.Dim(), len(tc.m.Params))
		}
		for rep := 0; rep < 3; rep++ {
			zeta := make([]float64, tr.FreeDim())
			for i := range zeta {
				zeta[i] = 0.7 * rng.NormFloat64()
			}
			th := make([]float64, tr.Dim())
			tr.Forward(zeta, th)
			g := make([]float64, len(th))
			v, err := tc.m.Density.LogProb(th, g)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.direct(th); math.Abs(v-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("%s: graph %.12g, direct %.12g", tc.m.Name, v, want)
			}
			want := fd.Gradient(nil, tc.direct, th, &fd.Settings{Formula: fd.Central})
			for i := range g {
				if math.Abs(g[i]-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
					t.Errorf("%s: d/d%s = %.8g, finite differences %.8g", tc.m.Name, tc.m.Params[i], g[i], want[i])
				}
			}
		}
	}
}
