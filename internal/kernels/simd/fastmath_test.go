package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

func softplus64(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// TestScalarAgainstFloat64 sweeps each function over its range and wants a
// relative error within a few float32 ulps (float32 rounds at 6e-8).
func TestScalarAgainstFloat64(t *testing.T) {
	worst := map[string]float64{}
	note := func(name string, got float32, want float64) {
		if math.Abs(want) < 1.2e-38 && math.Abs(float64(got)) < 1.2e-38 {
			return // below float32's normal range both are "zero"
		}
		if e := math.Abs(float64(got)-want) / math.Abs(want); e > worst[name] {
			worst[name] = e
		}
	}
	for i := 0; i <= 400000; i++ {
		x := float32(-100 + float64(i)*(200.0/400000))
		if x <= 0 && math.Exp(float64(x)) > 1.2e-38 {
			note("exp", ExpNeg(x), math.Exp(float64(x)))
		}
		u := float32(float64(i) / 400000)
		if u > 0 {
			note("log1p", Log1p(u), math.Log1p(float64(u)))
		}
		note("softplus", Softplus(x), softplus64(float64(x)))
		note("sigmoid", Sigmoid(x), sigmoid64(float64(x)))
	}
	for _, tiny := range []float32{1e-30, 1e-10, 3e-8} {
		note("log1p", Log1p(tiny), math.Log1p(float64(tiny)))
	}
	for name, w := range worst {
		if w > 4e-7 {
			t.Errorf("%s: worst relative error %.3g, want <= 4e-7", name, w)
		}
	}
	if len(worst) != 4 {
		t.Fatalf("checked %v", worst)
	}
	if Softplus(1e5) != 1e5 || Softplus(-1e5) != 0 || Sigmoid(-1e5) != 0 || Sigmoid(1e5) != 1 || ExpNeg(-1000) != 0 {
		t.Errorf("extremes: softplus(±1e5) = %v, %v; sigmoid(±1e5) = %v, %v; exp(-1000) = %v",
			Softplus(1e5), Softplus(-1e5), Sigmoid(1e5), Sigmoid(-1e5), ExpNeg(-1000))
	}
}

func testRows(rng *rand.Rand, n int) (x, l []float32) {
	x, l = make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(rng.IntN(2))
		l[i] = float32(rng.NormFloat64() * 8)
	}
	if n > 6 {
		l[0], l[1], l[2], l[3], l[4], l[5] = 0, -0, 95, -95, 1e-7, -200 // centre, saturation, underflow
	}
	return x, l
}

// TestBernoulliKernels checks the row sums and gradients (vector body plus
// scalar tail) against float64, for lengths around the vector width.
func TestBernoulliKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 5, 8, 9, 16, 23, 784, 1001} {
		x, l := testRows(rng, n)
		var want float64
		for j := range x {
			want += float64(x[j])*float64(l[j]) - softplus64(float64(l[j]))
		}
		got := float64(BernoulliRow(x, l))
		// float32 accumulation of n terms of size up to ~|l|.
		if math.Abs(got-want) > 1e-6*float64(n)*8 {
			t.Errorf("n=%d: row sum %v, float64 %v", n, got, want)
		}
		d := make([]float32, n)
		const g = -0.75
		BernoulliGrad(d, x, l, g)
		for j := range d {
			w := g * (float64(x[j]) - sigmoid64(float64(l[j])))
			// x - sigmoid(l) is a float32 difference: its absolute error
			// is an ulp of 1 (6e-8) when sigmoid(l) is near 1.
			if math.Abs(float64(d[j])-w) > 3e-7*math.Abs(w)+1.2e-7*math.Abs(g) {
				t.Fatalf("n=%d: d[%d] = %v, float64 %v (l = %v)", n, j, d[j], w, l[j])
			}
		}
	}
}

// TestVectorMatchesScalar compares the assembly body element by element with
// the scalar functions (the rounding of one step may differ by an ulp).
func TestVectorMatchesScalar(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2+FMA on this CPU (or built with purego): only the scalar path exists")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 2000 {
		x, l := testRows(rng, 8)
		for j := range l {
			l[j] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2)))
		}
		var scalar float32
		for j := range x {
			scalar += x[j]*l[j] - Softplus(l[j])
		}
		vec := bernoulliRowAVX2(&x[0], &l[0], 8)
		if math.Abs(float64(vec-scalar)) > 4e-7*(1+math.Abs(float64(scalar))) {
			t.Fatalf("trial %d: vector %v, scalar %v, l = %v", trial, vec, scalar, l)
		}
		d := make([]float32, 8)
		bernoulliGradAVX2(&d[0], &x[0], &l[0], 8, 1.5)
		for j := range d {
			if s := 1.5 * (x[j] - Sigmoid(l[j])); math.Abs(float64(d[j]-s)) > 2.4e-7*math.Abs(float64(s)) {
				t.Fatalf("trial %d: grad[%d] vector %v, scalar %v (l = %v)", trial, j, d[j], s, l[j])
			}
		}
	}
}

// TestSigmoidRow: the vector body agrees with the scalar Sigmoid to an ulp
// on rows long enough to have both, and SigmoidRow's values stay within a
// few ulps of float64's sigmoid, saturating to 0 and 1 at the ends.
func TestSigmoidRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for trial := range 500 {
		n := 1 + rng.IntN(40)
		l, d := make([]float32, n), make([]float32, n)
		for j := range l {
			l[j] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2)))
		}
		SigmoidRow(d, l)
		for j := range d {
			s := Sigmoid(l[j])
			if math.Abs(float64(d[j]-s)) > 1.2e-7*float64(s) {
				t.Fatalf("trial %d: SigmoidRow[%d] = %v, Sigmoid %v (l = %v)", trial, j, d[j], s, l[j])
			}
			if want := sigmoid64(float64(l[j])); math.Abs(float64(d[j])-want) > 4e-7*want+0x1p-126 { // 0 below float32's normal range
				t.Fatalf("trial %d: SigmoidRow[%d] = %v, float64 sigmoid %v (l = %v)", trial, j, d[j], want, l[j])
			}
		}
	}
	l := []float32{-1e5, -200, -90, 0, 20, 90, 1e5, 0}
	d := make([]float32, len(l))
	SigmoidRow(d, l)
	if d[0] != 0 || d[1] != 0 || d[3] != 0.5 || d[5] != 1 || d[6] != 1 {
		t.Fatalf("SigmoidRow(%v) = %v, want 0 0 ~0 0.5 ~1 1 1 0.5", l, d)
	}
}

func BenchmarkBernoulliRow(b *testing.B) {
	x, l := testRows(rand.New(rand.NewPCG(1, 1)), 784*128)
	var s float32
	for b.Loop() {
		for i := 0; i < len(x); i += 784 {
			s += BernoulliRow(x[i:i+784], l[i:i+784])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	_ = s
}

func BenchmarkBernoulliGrad(b *testing.B) {
	x, l := testRows(rand.New(rand.NewPCG(1, 1)), 784*128)
	d := make([]float32, len(x))
	for b.Loop() {
		BernoulliGrad(d, x, l, 1)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
}

// TestExpLog1pMatchesScalar: ExpLog1p's vector body gives ExpNeg's and
// Log1p's values bit for bit (the IAF gate's forward values, and so
// checkpoints, depend on it), on random bit patterns across the range
// and on the edges: 0, -0, expMin's neighbours, e around sqrt(2) - 1.
func TestExpLog1pMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	a := make([]float32, 1<<20)
	for i := range a {
		switch i % 3 {
		case 0: // any magnitude up to 128
			a[i] = math.Float32frombits(rng.Uint32() & 0xc2ffffff)
			if math.IsNaN(float64(a[i])) || a[i] > 128 || a[i] < -128 {
				a[i] = 0.5
			}
		case 1: // where e crosses sqrt(2) - 1 (|a| near 0.88)
			a[i] = float32(0.8 + 0.16*rng.Float64())
		default:
			a[i] = float32(rng.NormFloat64() * 4)
		}
	}
	copy(a, []float32{0, float32(math.Copysign(0, -1)), expMin, -expMin, math.Nextafter32(expMin, 0),
		math.Nextafter32(expMin, -100), 88, 1e-30, -1e-30, 1e30, -1e30, 0.8813736, -0.8813736, 2, -2, 100})
	e, l := make([]float32, len(a)), make([]float32, len(a))
	ExpLog1p(a, e, l)
	for i, v := range a {
		we := ExpNeg(-abs32(v))
		wl := Log1p(we)
		if math.Float32bits(e[i]) != math.Float32bits(we) || math.Float32bits(l[i]) != math.Float32bits(wl) {
			t.Fatalf("a = %v (%#x): ExpLog1p gives e %v, log1p %v; scalar %v, %v", v, math.Float32bits(v), e[i], l[i], we, wl)
		}
	}
}

func BenchmarkExpLog1p(b *testing.B) {
	a := make([]float32, 64*20)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range a {
		a[i] = float32(rng.NormFloat64() * 3)
	}
	e, l := make([]float32, len(a)), make([]float32, len(a))
	b.Run("vector", func(b *testing.B) {
		for b.Loop() {
			ExpLog1p(a, e, l)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(a)), "ns/elem")
	})
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			for j, v := range a {
				e[j] = ExpNeg(-abs32(v))
				l[j] = Log1p(e[j])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(a)), "ns/elem")
	})
}
