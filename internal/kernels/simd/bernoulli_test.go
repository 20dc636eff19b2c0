package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vectorForms runs f with each vector form of the Bernoulli kernels this
// CPU has (AVX2, and AVX-512 if present).
func vectorForms(t *testing.T, f func(t *testing.T)) {
	if !VectorBernoulli() {
		t.Skip("no AVX2")
	}
	forms := []bool{false}
	if useAVX512 {
		forms = append(forms, true)
	}
	defer func(z bool) { useAVX512 = z }(useAVX512)
	for _, z := range forms {
		useAVX512 = z
		name := "avx2"
		if z {
			name = "avx512"
		}
		t.Run(name, f)
	}
}

// TestBernoulliSplitMatchesRow checks that a row's Bernoulli sum taken in
// segments by BernoulliBiasAcc and BernoulliFinish, with the bias added
// on the way, is BernoulliRow of the biased logits bit for bit, and leaves
// the biased logits in place, for row lengths with and without a tail and
// segments cut at multiples of 8 (as a GEMM's column blocks are).
func TestBernoulliSplitMatchesRow(t *testing.T) { vectorForms(t, testBernoulliSplit) }

func testBernoulliSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{7, 8, 20, 416, 784, 789} {
		x, l, b := make([]float32, n), make([]float32, n), make([]float32, n)
		for j := range n {
			x[j] = float32(rng.IntN(2))
			if j%5 == 0 {
				x[j] = rng.Float32() // grey levels too
			}
			l[j] = float32(rng.NormFloat64() * 8)
			b[j] = float32(rng.NormFloat64())
		}
		l[0], b[0] = 100, 0 // far tails of softplus
		if n > 1 {
			l[1], b[1] = -100, 0
		}
		want := append([]float32(nil), l...)
		Add(want, b)
		wantSum := BernoulliRow(x, want)
		nv := n &^ 7
		for _, cut := range []int{0, 8, 32, 416} {
			cut = min(cut, nv)
			got := append([]float32(nil), l...)
			var acc [8]float32
			BernoulliBiasAcc(&acc, x[:cut], got[:cut], b[:cut])
			BernoulliBiasAcc(&acc, x[cut:nv], got[cut:nv], b[cut:nv])
			sum := BernoulliFinish(&acc, x[nv:], got[nv:], b[nv:])
			if math.Float32bits(sum) != math.Float32bits(wantSum) {
				t.Errorf("n %d, cut %d: sum %v, BernoulliRow %v", n, cut, sum, wantSum)
			}
			for j := range got {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("n %d, cut %d: logit %d is %v, want %v", n, cut, j, got[j], want[j])
				}
			}
		}
	}
}

// TestBernoulliRowLanes checks BernoulliRow's vector body against its
// definition step by step in Go: element j's term (as Softplus computes
// it) added into lane j mod 8 in order of j, the lanes reduced as halves
// and then pairs, the tail added one by one. The body computes two
// blocks of 8 at a time; the sums must not depend on that.
func TestBernoulliRowLanes(t *testing.T) { vectorForms(t, testBernoulliLanes) }

func testBernoulliLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{8, 16, 24, 40, 784, 797} {
		for range 20 {
			x, l := make([]float32, n), make([]float32, n)
			for j := range n {
				x[j] = float32(rng.IntN(2))
				l[j] = float32(rng.NormFloat64() * 20)
				if j%7 == 3 {
					l[j] = float32(rng.NormFloat64() * 60) // exp's far tail and its cut-off
				}
			}
			var acc [8]float32
			nv := n &^ 7
			for j := range nv {
				acc[j%8] += x[j]*l[j] - Softplus(l[j])
			}
			want := BernoulliFinish(&acc, x[nv:], append([]float32(nil), l[nv:]...), make([]float32, n-nv))
			if got := BernoulliRow(x, l); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("n %d: BernoulliRow %v, lane by lane %v", n, got, want)
			}
		}
	}
}

// BenchmarkBernoulliBiasAcc: rows of 784 in the two column blocks the
// GEMM epilogue hands over (416 and 368 columns), as log p(x) calls it.
func BenchmarkBernoulliBiasAcc(b *testing.B) {
	if !VectorBernoulli() {
		b.Skip("no AVX2")
	}
	const d = 784
	x, l := testRows(rand.New(rand.NewPCG(1, 1)), d*128)
	bias := make([]float32, d)
	for j := range bias {
		bias[j] = float32(math.Copysign(0, -1)) // l + -0 = l: the same logits every round
	}
	acc := make([][8]float32, 128)
	for b.Loop() {
		for _, seg := range [][2]int{{0, 416}, {416, d}} {
			for r := range acc {
				o := r * d
				BernoulliBiasAcc(&acc[r], x[o+seg[0]:o+seg[1]], l[o+seg[0]:o+seg[1]], bias[seg[0]:seg[1]])
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
}
