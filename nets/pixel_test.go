package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func sumTo1(t *testing.T, what string, p []float64, tol float64) {
	t.Helper()
	s := 0.0
	for v, pv := range p {
		if !(pv >= 0) {
			t.Fatalf("%s: P(%d) = %v", what, v, pv)
		}
		s += pv
	}
	if math.Abs(s-1) > tol {
		t.Fatalf("%s: probabilities sum to 1%+.3g", what, s-1)
	}
}

func TestPixelPMFsSumToOne(t *testing.T) {
	p := make([]float64, Levels)
	for _, mu := range []float64{-3, -1, -0.37, 0, 0.5, 1, 2.5, 1e6} {
		for _, ls := range []float64{-12, -7, -4.2, -1, 0, 2, 8, 1e3} {
			LogisticPMF(mu, ls, p)
			sumTo1(t, fmt.Sprintf("logistic(%v, %v)", mu, ls), p, 1e-12)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for K := 1; K <= 5; K++ {
		lg, mu, ls := randSlice(rng, K, 3), randSlice(rng, K, 1), randSlice(rng, K, 2)
		LogisticMixPMF(lg, mu, ls, p)
		sumTo1(t, fmt.Sprintf("mixture K=%d", K), p, 1e-12)
	}
	LogisticMixPMF([]float64{1e4, -1e4}, []float64{0.1, -0.2}, []float64{-7, 50}, p)
	sumTo1(t, "mixture with extreme logits", p, 1e-12)
	for _, scale := range []float64{0, 1, 30, 1e4} {
		l := randSlice(rng, Levels, scale)
		CategoricalPMF(l, p)
		// log-domain rounding grows with the logits' size: eps·|l|.
		sumTo1(t, fmt.Sprintf("categorical scale %v", scale), p, 1e-12*(1+4*scale))
	}
}

// TestLogisticBinDirect compares the stable forms with the textbook
// differences of CDFs where those are accurate.
func TestLogisticBinDirect(t *testing.T) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	for _, mu := range []float64{-0.8, -0.1, 0, 0.3, 0.9} {
		for _, ls := range []float64{-5, -3, -1, 0.5} {
			for _, v := range []int{0, 1, 17, 127, 128, 200, 254, 255} {
				s := math.Exp(ls)
				xc := 2*float64(v)/255 - 1
				var want float64
				switch v {
				case 0:
					want = sig((xc - mu + 1.0/255) / s)
				case 255:
					want = 1 - sig((xc-mu-1.0/255)/s)
				default:
					want = sig((xc-mu+1.0/255)/s) - sig((xc-mu-1.0/255)/s)
				}
				if want < 1e-6 {
					continue // the direct form has lost its digits
				}
				got, _, _ := logisticBin(v, mu, ls)
				if math.Abs(got-math.Log(want)) > 1e-8 {
					t.Fatalf("v %d mu %v ls %v: log P = %v, direct %v", v, mu, ls, got, math.Log(want))
				}
			}
		}
	}
}

type pixelCase struct {
	name string
	kind PixelKind
	k    int
}

var pixelCases = []pixelCase{{"logistic", PixelLogistic, 0}, {"mix1", PixelLogisticMix, 1}, {"mix3", PixelLogisticMix, 3},
	{"categorical", PixelCategorical, 0}, {"mixRGB2", PixelLogisticMixRGB, 2}}

// pixelRef is log p(x | params) per row by the per-pixel functions alone.
func pixelRef(c pixelCase, rows, D int, x, par []float64) []float64 {
	P, ch := PixelParams(c.kind, c.k), unitChannels(c.kind)
	U := D / ch
	out := make([]float64, rows)
	pv := make([]float64, P)
	for i := range rows {
		for j := range U {
			var v [3]int
			for cc := range ch {
				v[cc] = int(math.Round(x[i*D+cc*U+j] * 255))
			}
			for q := range P {
				pv[q] = par[i*P*U+q*U+j]
			}
			switch c.kind {
			case PixelLogistic:
				lp, _, _ := logisticBin(v[0], pv[0], pv[1])
				out[i] += lp
			case PixelLogisticMix:
				out[i] += mixturePixel(v[0], pv, nil, make([]float64, c.k))
			case PixelCategorical:
				out[i] += categoricalPixel(v[0], pv, nil)
			case PixelLogisticMixRGB:
				out[i] += mixRGBPixel(v, pv, nil, make([]float64, c.k))
			}
		}
	}
	return out
}

// pixelInputs draws levels including both edges, and parameters in a
// typical range.
func pixelInputs(rng *rand.Rand, c pixelCase, rows, D int) (x, par []float64) {
	x = make([]float64, rows*D)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = 0
		case 1:
			x[i] = 1
		default:
			x[i] = float64(rng.IntN(256)) / 255
		}
	}
	par = randSlice(rng, rows*PixelParamWidth(c.kind, c.k, D), 1)
	return x, par
}

func pixelRun(t *testing.T, c pixelCase, rows, D int, x, par, rw []float64, dt tensor.Dtype) (ll, grad []float64, err error) {
	t.Helper()
	P := PixelParamWidth(c.kind, c.k, D)
	g := G.NewGraph()
	xn := G.NewMatrix(g, dt, G.WithShape(rows, D), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(rows, D), tensor.WithBacking(toDtype(x, dt)))))
	pn := G.NewMatrix(g, dt, G.WithShape(rows, P), G.WithName("p"), G.WithValue(tensor.New(tensor.WithShape(rows, P), tensor.WithBacking(toDtype(par, dt)))))
	wn := G.NewVector(g, dt, G.WithShape(rows), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(rows), tensor.WithBacking(toDtype(rw, dt)))))
	l, err := PixelLogLik(c.kind, c.k, xn, pn)
	if err != nil {
		t.Fatal(err)
	}
	var lv G.Value
	G.Read(l, &lv)
	if _, err := G.Grad(G.Must(G.Mul(wn, l)), pn); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(pn))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, nil, err
	}
	gv, err := pn.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return append([]float64(nil), toF64(lv.Data())...), append([]float64(nil), toF64(gv.Data())...), nil
}

func TestPixelLogLikGradients(t *testing.T) {
	for ci, c := range pixelCases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 3))
			rows, D := 3, 7
			switch c.kind {
			case PixelCategorical:
				D = 2
			case PixelLogisticMixRGB:
				D = 6
			}
			x, par := pixelInputs(rng, c, rows, D)
			rw := randSlice(rng, rows, 1)
			ll, grad, err := pixelRun(t, c, rows, D, x, par, rw, tensor.Float64)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(ll, pixelRef(c, rows, D, x, par)); d > 1e-12 {
				t.Fatalf("log-likelihood differs from the per-pixel sum by %g", d)
			}
			f := func(p []float64) float64 {
				s := 0.0
				for i, v := range pixelRef(c, rows, D, x, p) {
					s += rw[i] * v
				}
				return s
			}
			num := fd.Gradient(nil, f, par, &fd.Settings{Formula: fd.Central, Step: 1e-6})
			if d := maxDiff(grad, num); d > 1e-6 {
				t.Fatalf("gradient differs from finite differences by %g", d)
			}
			ll32, grad32, err := pixelRun(t, c, rows, D, x, par, rw, tensor.Float32)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(ll32, ll); d > 1e-5 {
				t.Fatalf("float32 log-likelihood differs by %g", d)
			}
			if d := maxDiff(grad32, grad); d > 1e-5 {
				t.Fatalf("float32 gradient differs by %g", d)
			}
		})
	}
}

// TestPixelLogLikExtremes feeds saturated parameters: the results and the
// gradients stay finite and log p stays <= 0.
func TestPixelLogLikExtremes(t *testing.T) {
	extremes := []float64{-1e30, -1e4, -88, -7.5, 0, 7.5, 88, 1e4, 1e30}
	for _, c := range pixelCases {
		rng := rand.New(rand.NewPCG(4, 4))
		rows, D := 2, 6
		x, par := pixelInputs(rng, c, rows, D)
		for i := range par {
			par[i] = extremes[rng.IntN(len(extremes))]
		}
		rw := []float64{1, -1}
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			ll, grad, err := pixelRun(t, c, rows, D, x, par, rw, dt)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range ll {
				if math.IsNaN(v) || math.IsInf(v, 0) || v > 0 {
					t.Fatalf("%s %v: row %d log p = %v", c.name, dt, i, v)
				}
			}
			for i, v := range grad {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s %v: gradient %d = %v", c.name, dt, i, v)
				}
			}
		}
	}
}

func TestPixelLogLikBadInput(t *testing.T) {
	c := pixelCases[0]
	for _, bad := range []float64{0.5 / 255 * 1.01, -1.0 / 255, 1 + 1.0/255, math.NaN()} {
		x := []float64{0, bad, 1}
		par := make([]float64, 6)
		_, _, err := pixelRun(t, c, 1, 3, x, par, []float64{1}, tensor.Float64)
		if err == nil || !strings.Contains(err.Error(), "x[0, 1]") {
			t.Fatalf("x = %v: error %v, want one naming x[0, 1]", bad, err)
		}
	}
	g := G.NewGraph()
	xn := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("x"))
	pn := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 5), G.WithName("p"))
	if _, err := PixelLogLik(PixelLogistic, 0, xn, pn); err == nil {
		t.Fatal("parameters of the wrong width accepted")
	}
	if _, err := PixelLogLik(PixelLogisticMix, 0, xn, pn); err == nil {
		t.Fatal("a mixture of 0 components accepted")
	}
}

// TestMixRGB checks the coupled mixture against the product of the
// per-channel distributions with the coupled means, and that it sums to 1
// over all 256³ colours.
func TestMixRGB(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	K := 2
	par := randSlice(rng, 10*K, 1)
	par[0], par[1] = 2, -1
	pr, pg, pb := make([]float64, Levels), make([]float64, Levels), make([]float64, Levels)
	pi := []float64{math.Exp(2) / (math.Exp(2) + math.Exp(-1)), math.Exp(-1) / (math.Exp(2) + math.Exp(-1))}
	lk := make([]float64, K)
	for _, v := range [][3]int{{0, 0, 0}, {255, 255, 255}, {12, 200, 255}, {128, 0, 77}} {
		want := 0.0
		for k := range K {
			xr, xg := 2*float64(v[0])/255-1, 2*float64(v[1])/255-1
			LogisticPMF(par[K+k], par[4*K+k], pr)
			LogisticPMF(par[2*K+k]+math.Tanh(par[7*K+k])*xr, par[5*K+k], pg)
			LogisticPMF(par[3*K+k]+math.Tanh(par[8*K+k])*xr+math.Tanh(par[9*K+k])*xg, par[6*K+k], pb)
			want += pi[k] * pr[v[0]] * pg[v[1]] * pb[v[2]]
		}
		if got := mixRGBPixel(v, par, nil, lk); math.Abs(got-math.Log(want)) > 1e-10 {
			t.Fatalf("%v: log p = %v, direct %v", v, got, math.Log(want))
		}
	}
	// p(r, g) by the per-channel distributions; p(r, g, b) summed over b
	// by the kernel must give it, and p(r, g) must sum to 1 over all r, g.
	prg := func(r, g int) float64 {
		p := 0.0
		for k := range K {
			LogisticPMF(par[K+k], par[4*K+k], pr)
			LogisticPMF(par[2*K+k]+math.Tanh(par[7*K+k])*(2*float64(r)/255-1), par[5*K+k], pg)
			p += pi[k] * pr[r] * pg[g]
		}
		return p
	}
	for _, rg := range [][2]int{{0, 0}, {255, 3}, {100, 101}, {7, 255}} {
		s := 0.0
		for b := range Levels {
			s += math.Exp(mixRGBPixel([3]int{rg[0], rg[1], b}, par, nil, lk))
		}
		if want := prg(rg[0], rg[1]); math.Abs(s-want) > 1e-12*(1+want) {
			t.Fatalf("sum over b at %v = %v, want p(r, g) = %v", rg, s, want)
		}
	}
	total := 0.0
	for r := range Levels {
		for k := range K {
			LogisticPMF(par[K+k], par[4*K+k], pr)
			LogisticPMF(par[2*K+k]+math.Tanh(par[7*K+k])*(2*float64(r)/255-1), par[5*K+k], pg)
			for g := range Levels {
				total += pi[k] * pr[r] * pg[g]
			}
		}
	}
	if math.Abs(total-1) > 1e-12 {
		t.Fatalf("p(r, g) sums to 1%+.3g", total-1)
	}
}

// TestPixelMeanSymmetric: with every mean at 0 the distributions are
// symmetric about level 127.5, whatever the scales.
func TestPixelMeanSymmetric(t *testing.T) {
	D := 4
	for _, c := range []pixelCase{{"logistic", PixelLogistic, 0}, {"mix3", PixelLogisticMix, 3}, {"mixRGB2", PixelLogisticMixRGB, 2}} {
		rng := rand.New(rand.NewPCG(5, 5))
		if c.kind == PixelLogisticMixRGB {
			D = 3
		}
		par := randSlice(rng, PixelParamWidth(c.kind, c.k, D), 1)
		U := D / unitChannels(c.kind)
		switch c.kind {
		case PixelLogistic:
			clear(par[:U]) // means
		case PixelLogisticMix:
			clear(par[c.k*U : 2*c.k*U])
		case PixelLogisticMixRGB:
			clear(par[c.k*U : 4*c.k*U])    // means
			clear(par[7*c.k*U : 10*c.k*U]) // coefficients
		}
		out := make([]float64, D)
		if err := PixelMean(c.kind, c.k, par, out); err != nil {
			t.Fatal(err)
		}
		for j, m := range out {
			if math.Abs(m-0.5) > 1e-12 {
				t.Fatalf("%s: mean %d = %v, want 0.5", c.name, j, m)
			}
		}
	}
}

// TestPixelSampleMatchesMean compares sample means of many draws with the
// exact means (5 standard errors).
func TestPixelSampleMatchesMean(t *testing.T) {
	for _, c := range []pixelCase{{"logistic", PixelLogistic, 0}, {"mix3", PixelLogisticMix, 3}, {"categorical", PixelCategorical, 0}, {"mixRGB2", PixelLogisticMixRGB, 2}} {
		rng := rand.New(rand.NewPCG(6, 6))
		D := 2
		if c.kind == PixelLogisticMixRGB {
			D = 3
		}
		par := randSlice(rng, PixelParamWidth(c.kind, c.k, D), 1)
		if c.kind == PixelLogisticMixRGB {
			clear(par[7*c.k : 10*c.k]) // uncoupled, so that PixelMean is exact
		}
		want := make([]float64, D)
		if err := PixelMean(c.kind, c.k, par, want); err != nil {
			t.Fatal(err)
		}
		const n = 4000
		sum, sq := make([]float64, D), make([]float64, D)
		x := make([]float64, D)
		for range n {
			if err := PixelSample(c.kind, c.k, par, rng, x); err != nil {
				t.Fatal(err)
			}
			for j, v := range x {
				if _, ok := pixelLevel(v); !ok {
					t.Fatalf("%s: sample %v off the grid", c.name, v)
				}
				sum[j] += v
				sq[j] += v * v
			}
		}
		for j := range D {
			m := sum[j] / n
			se := math.Sqrt((sq[j]/n - m*m) / n)
			if math.Abs(m-want[j]) > 5*se+1e-9 {
				t.Fatalf("%s: value %d: sample mean %v, exact %v (se %v)", c.name, j, m, want[j], se)
			}
		}
	}
	if err := PixelSample(PixelLogistic, 0, make([]float64, 3), rand.New(rand.NewPCG(1, 1)), make([]float64, 2)); err == nil {
		t.Fatal("wrong parameter count accepted")
	}
	if _, err := PixelHeadChannels(PixelLogisticMixRGB, 5, 1); err == nil {
		t.Fatal("RGB mixture on 1 channel accepted")
	}
	if n, err := PixelHeadChannels(PixelLogisticMix, 5, 3); err != nil || n != 45 {
		t.Fatalf("mixture head channels %d, %v; want 45", n, err)
	}
}
