package simd

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// The vector kernels must give the scalar functions' values bit for bit
// (a row's vector body and scalar tail agree, and results do not depend on
// the CPU's vector width). These tests check every element of about a
// million logits per kernel, in rows whose lengths leave every remainder
// of the AVX-512 loops (96 elements an iteration, masked tails of 8 to 88).

// exactLengths are row lengths around the kernels' blocks of 64 and 96
// (multiples of 8: the vector part of a row) and the GEMM epilogue's
// column blocks for 784 (416, 368).
var exactLengths = []int{8, 16, 24, 40, 56, 64, 72, 88, 96, 104, 152, 184, 192, 200, 368, 416, 784}

// exactLogits returns n logits: random bit patterns of magnitude below 128,
// values where e = exp(-|l|) crosses Log1p's sqrt(2) - 1 branch, normal
// ones, and the edges (zeros, exp's underflow cut expMin and its
// neighbours, tiny and huge values, infinities) among them.
func exactLogits(rng *rand.Rand, n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		switch i % 4 {
		case 0:
			l[i] = math.Float32frombits(rng.Uint32() & 0xc2ffffff)
			if math.IsNaN(float64(l[i])) || l[i] > 128 || l[i] < -128 {
				l[i] = 0.5
			}
		case 1:
			l[i] = float32(0.8813736 + 1e-3*rng.NormFloat64())
			if rng.IntN(2) == 0 {
				l[i] = -l[i]
			}
		case 2:
			l[i] = float32(rng.NormFloat64() * 8)
		default:
			l[i] = float32(rng.NormFloat64() * 40)
		}
	}
	inf := float32(math.Inf(1))
	copy(l, []float32{0, float32(math.Copysign(0, -1)), expMin, -expMin, math.Nextafter32(expMin, 0),
		math.Nextafter32(expMin, -100), -math.Nextafter32(expMin, 0), -math.Nextafter32(expMin, -100),
		88, -88, 1e-30, -1e-30, 1e-40, -1e-40, 1e30, -1e30, inf, -inf, 0.8813736, -0.8813736,
		math.Nextafter32(0.8813736, 1), math.Nextafter32(0.8813736, 0), 2, -2, 100, -100})
	return l
}

// sameBits reports whether a and b are the same float32, NaNs included.
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// term is element j's term of BernoulliRow, as the vector body computes it.
func term(x, l float32) float32 { return float32(x*l) - Softplus(l) }

// TestBernoulliBiasAccExact puts each block of 8 logits, in turn, in a row
// of padding whose terms are -0 (l = -100, x = 0), at a random block of a
// row of each length, so that BernoulliBiasAcc's 8 accumulator lanes are
// the block's 8 terms themselves; and checks the logits it stores (l + b
// with b = -0: the logits unchanged). Accumulator lanes that start at -0
// must stay -0 through the padding.
func TestBernoulliBiasAccExact(t *testing.T) { vectorForms(t, testBiasAccExact) }

func testBiasAccExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	logits := exactLogits(rng, 1<<20)
	negZero := float32(math.Copysign(0, -1))
	pad := make([]float32, 1000)
	for i := range pad {
		pad[i] = -100
	}
	bias := make([]float32, 1000)
	for i := range bias {
		bias[i] = negZero
	}
	x, l := make([]float32, 1000), make([]float32, 1000)
	for k := 0; k < len(logits); k += 8 {
		n := exactLengths[rng.IntN(len(exactLengths))]
		at := 8 * rng.IntN(n/8)
		copy(l[:n], pad)
		clear(x[:n])
		copy(l[at:at+8], logits[k:k+8])
		for j := range 8 {
			x[at+j] = [3]float32{0, 1, rng.Float32()}[rng.IntN(3)]
		}
		var acc [8]float32
		for j := range acc {
			if j%2 == 1 {
				acc[j] = negZero
			}
		}
		want := acc
		for j := range 8 {
			want[j] += term(x[at+j], l[at+j])
		}
		BernoulliBiasAcc(&acc, x[:n], l[:n], bias[:n])
		for j := range 8 {
			if !sameBits(acc[j], want[j]) {
				t.Fatalf("n %d, block at %d, l %v (%#x), x %v: lane %d is %v, want %v",
					n, at, l[at+j], math.Float32bits(l[at+j]), x[at+j], j, acc[j], want[j])
			}
			if !sameBits(l[at+j], logits[k+j]) {
				t.Fatalf("n %d: stored logit %v, want %v", n, l[at+j], logits[k+j])
			}
		}
	}
}

// TestBernoulliRowExact does the same for BernoulliRow with one live
// element a row: its sum is then that element's term, exactly.
func TestBernoulliRowExact(t *testing.T) { vectorForms(t, testRowExact) }

func testRowExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	logits := exactLogits(rng, 1<<20)
	x, l := make([]float32, 1000), make([]float32, 1000)
	for k, v := range logits {
		n := exactLengths[k%len(exactLengths)]
		at := rng.IntN(n)
		for i := range n {
			l[i] = -100
		}
		clear(x[:n])
		l[at], x[at] = v, [3]float32{0, 1, rng.Float32()}[k%3]
		if got, want := BernoulliRow(x[:n], l[:n]), 0+term(x[at], v); !sameBits(got, want) {
			t.Fatalf("n %d, element %d: l %v (%#x), x %v: BernoulliRow %v, want %v", n, at, v, math.Float32bits(v), x[at], got, want)
		}
	}
}

// TestBernoulliGradExact: BernoulliGrad is g (x - Sigmoid(l)) bit for bit.
func TestBernoulliGradExact(t *testing.T) { vectorForms(t, testGradExact) }

func testGradExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	logits := exactLogits(rng, 1<<20)
	x := make([]float32, len(logits))
	for i := range x {
		x[i] = [3]float32{0, 1, rng.Float32()}[rng.IntN(3)]
	}
	d := make([]float32, len(logits))
	for k := 0; k < len(logits); {
		n := min(exactLengths[rng.IntN(len(exactLengths))]+rng.IntN(8), len(logits)-k)
		g := float32(rng.NormFloat64())
		BernoulliGrad(d[k:k+n], x[k:k+n], logits[k:k+n], g)
		for j := k; j < k+n; j++ {
			if want := g * float32(x[j]-Sigmoid(logits[j])); !sameBits(d[j], want) {
				t.Fatalf("row length %d: l %v (%#x), x %v, g %v: %v, want %v", n, logits[j], math.Float32bits(logits[j]), x[j], g, d[j], want)
			}
		}
		k += n
	}
}

// TestExpLog1pLengths: ExpLog1p bit for bit at every length up to 200
// (each remainder of the vector loops, and the scalar tail).
func TestExpLog1pLengths(t *testing.T) { vectorForms(t, testExpLog1pLengths) }

func testExpLog1pLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for n := 1; n <= 200; n++ {
		a := exactLogits(rng, n)
		e, l := make([]float32, n+16), make([]float32, n+16)
		for i := n; i < n+16; i++ {
			e[i], l[i] = 7, 7 // must stay: nothing is written past n
		}
		ExpLog1p(a, e[:n], l[:n])
		for i, v := range a {
			we := ExpNeg(-abs32(v))
			if wl := Log1p(we); !sameBits(e[i], we) || !sameBits(l[i], wl) {
				t.Fatalf("n %d: a = %v (%#x): e %v, log1p %v; scalar %v, %v", n, v, math.Float32bits(v), e[i], l[i], we, wl)
			}
		}
		for i := n; i < n+16; i++ {
			if e[i] != 7 || l[i] != 7 {
				t.Fatalf("n %d: wrote past the end at %d", n, i)
			}
		}
	}
}

// TestExpLog1pAllFloats compares the AVX-512 kernel with the AVX2 one
// (which TestExpLog1pMatchesScalar ties to the scalar functions) on all
// 2^32 float32 bit patterns. It takes about a minute: set
// GOVAE_EXHAUSTIVE=1 to run it.
func TestExpLog1pAllFloats(t *testing.T) {
	if os.Getenv("GOVAE_EXHAUSTIVE") == "" {
		t.Skip("set GOVAE_EXHAUSTIVE=1")
	}
	if !useAVX512 {
		t.Skip("no AVX-512")
	}
	const chunk = 1 << 22
	a := make([]float32, chunk)
	e2, l2, e5, l5 := make([]float32, chunk), make([]float32, chunk), make([]float32, chunk), make([]float32, chunk)
	for base := uint64(0); base < 1<<32; base += chunk {
		for i := range a {
			a[i] = math.Float32frombits(uint32(base) + uint32(i))
		}
		expLog1pAVX2(&a[0], &e2[0], &l2[0], chunk)
		expLog1pAVX512(&a[0], &e5[0], &l5[0], chunk)
		for i := range a {
			if math.Float32bits(e2[i]) != math.Float32bits(e5[i]) || math.Float32bits(l2[i]) != math.Float32bits(l5[i]) {
				t.Fatalf("a = %#x: AVX-512 gives e %#x, log1p %#x; AVX2 %#x, %#x", math.Float32bits(a[i]),
					math.Float32bits(e5[i]), math.Float32bits(l5[i]), math.Float32bits(e2[i]), math.Float32bits(l2[i]))
			}
		}
	}
}
