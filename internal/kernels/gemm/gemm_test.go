package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ---------------------------------------------------------------------------
// Reference and helpers.

// refGemm computes C = alpha*op(A)*op(B) + beta*C in float64 and also returns,
// per element, the magnitude |alpha|·Σ|a||b| + |beta·c| that bounds the
// float32 rounding error.
func refGemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	// op(A) as m×k and op(B)ᵀ as n×k, row-major float64.
	opA := make([]float64, m*k)
	opBT := make([]float64, n*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if tA == blas.NoTrans {
				opA[i*k+p] = float64(a[i*lda+p])
			} else {
				opA[i*k+p] = float64(a[p*lda+i])
			}
		}
	}
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			if tB == blas.NoTrans {
				opBT[j*k+p] = float64(b[p*ldb+j])
			} else {
				opBT[j*k+p] = float64(b[j*ldb+p])
			}
		}
	}
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		ai := opA[i*k : i*k+k]
		for j := 0; j < n; j++ {
			bj := opBT[j*k : j*k+k]
			var s, sa float64
			for p, av := range ai {
				ab := av * bj[p]
				s += ab
				sa += math.Abs(ab)
			}
			w := float64(alpha) * s
			sc := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				cv := float64(beta) * float64(c[i*ldc+j])
				w += cv
				sc += math.Abs(cv)
			}
			want[i*n+j] = w
			scale[i*n+j] = sc
		}
	}
	return want, scale
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// operands allocates A, B, C for the given case, with leading dimensions
// padded by the given amounts and the padding filled with sentinels.
type gemmCase struct {
	tA, tB           blas.Transpose
	m, n, k          int
	alpha, beta      float32
	padA, padB, padC int
	nanC             bool // fill C with NaN (only meaningful with beta == 0)
}

func (tc gemmCase) String() string {
	t := func(x blas.Transpose) string {
		if x == blas.NoTrans {
			return "N"
		}
		return "T"
	}
	return fmt.Sprintf("%s%s/m%d_n%d_k%d/alpha%g_beta%g/pad%d,%d,%d/nan%v", t(tc.tA), t(tc.tB), tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC, tc.nanC)
}

type operands struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

func (tc gemmCase) operands(r *rand.Rand) operands {
	var o operands
	ar, ac := tc.m, tc.k
	if tc.tA != blas.NoTrans {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.tB != blas.NoTrans {
		br, bc = tc.n, tc.k
	}
	o.lda = max(1, ac+tc.padA)
	o.ldb = max(1, bc+tc.padB)
	o.ldc = max(1, tc.n+tc.padC)
	o.a = randSlice(r, max(0, (ar-1)*o.lda+ac))
	o.b = randSlice(r, max(0, (br-1)*o.ldb+bc))
	o.c = randSlice(r, max(0, (tc.m-1)*o.ldc+tc.n))
	for i := range o.c {
		if tc.nanC || i%o.ldc >= tc.n {
			o.c[i] = float32(math.NaN())
		}
	}
	return o
}

// check runs Sgemm on tc and compares with the float64 reference.
func check(t *testing.T, r *rand.Rand, tc gemmCase) {
	t.Helper()
	o := tc.operands(r)
	c0 := slices.Clone(o.c)
	aCopy, bCopy := slices.Clone(o.a), slices.Clone(o.b)
	want, scale := refGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, c0, o.ldc)
	Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.c, o.ldc)
	if !slices.Equal(o.a, aCopy) || !slices.Equal(o.b, bCopy) {
		t.Fatalf("%v: A or B modified", tc)
	}
	// Rounding error bound for float32: one rounding per term of the
	// FMA/sum chain plus the alpha/beta update.
	tol := float64(tc.k+4) * 0x1p-23
	bad := 0
	for i := range o.c {
		row, col := i/o.ldc, i%o.ldc
		if col >= tc.n {
			if !math.IsNaN(float64(o.c[i])) {
				t.Fatalf("%v: C padding (%d,%d) overwritten: %v", tc, row, col, o.c[i])
			}
			continue
		}
		got := float64(o.c[i])
		w, s := want[row*tc.n+col], scale[row*tc.n+col]
		if math.IsNaN(got) || math.Abs(got-w) > tol*s+1e-30 {
			if bad++; bad <= 5 {
				t.Errorf("%v [kernel %s]: C[%d,%d] = %v, want %v (scale %v)", tc, KernelName(), row, col, got, w, s)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%v: %d wrong elements", tc, bad)
	}
}

var transes = [][2]blas.Transpose{
	{blas.NoTrans, blas.NoTrans},
	{blas.NoTrans, blas.Trans},
	{blas.Trans, blas.NoTrans},
	{blas.ConjTrans, blas.ConjTrans},
}

var alphaBetas = [][2]float32{
	{1, 0}, {1, 1}, {1, 0.3},
	{-0.5, 0}, {-0.5, 1}, {-0.5, 0.3},
	{0, 0}, {0, 1}, {0, 0.3},
}

// noAdapt disables the adaptive choice between serial and parallel
// execution (a loaded machine may make serial faster) so that a test surely
// exercises the parallel path; it returns the function restoring it.
func noAdapt() func() {
	adaptive = false
	return func() { adaptive = true }
}

// forEachKernel runs f with every kernel available on this machine (the
// assembly ones and the pure-Go fallback), restoring the default after.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	for _, k := range kernels {
		t.Run(k.name, func(t *testing.T) {
			old := setKernel(k)
			defer setKernel(old)
			f(t)
		})
	}
}

// ---------------------------------------------------------------------------
// Correctness.

// TestSgemmShapes covers tiny and prime sizes, every micro-kernel edge and
// every cache-blocking boundary, in all four transpose cases with padded
// leading dimensions and all alpha/beta combinations.
func TestSgemmShapes(t *testing.T) {
	dims := []int{1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 15, 16, 17, 20, 23, 24, 25, 31, 32, 33, 36, 63, 64, 65, 127, 128, 129}
	type shape struct{ m, n, k int }
	shapes := []shape{{1, 1, 1}, {7, 13, 17}, {31, 33, 127}, {129, 127, 31}, {13, 7, 1}, {1, 129, 33}, {129, 1, 17},
		// the AVX-512 edge variants: 4-row and 16-column tiles, written in
		// place or through the scratch tile
		{4, 32, 5}, {16, 64, 9}, {64, 400, 31}, {12, 16, 9}, {24, 48, 17}, {28, 16, 3}, {3, 16, 6}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		shapes = append(shapes, shape{dims[r.IntN(len(dims))], dims[r.IntN(len(dims))], dims[r.IntN(len(dims))]})
	}
	// Blocking boundaries: kc (256), mc (192), nc (1536), both sides.
	for _, k := range []int{kcMax - 1, kcMax, kcMax + 1, 2*kcMax + 1} {
		shapes = append(shapes, shape{25, 33, k})
	}
	for _, m := range []int{mcMax - 1, mcMax, mcMax + 1, 2*mcMax + 7} {
		shapes = append(shapes, shape{m, 17, 9})
	}
	for _, n := range []int{ncMax - 1, ncMax, ncMax + 1} {
		shapes = append(shapes, shape{7, n, 5})
	}
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for si, s := range shapes {
			for ti, tr := range transes {
				ab := alphaBetas[(si*len(transes)+ti)%len(alphaBetas)]
				tc := gemmCase{tA: tr[0], tB: tr[1], m: s.m, n: s.n, k: s.k, alpha: ab[0], beta: ab[1]}
				if (si+ti)%3 != 0 {
					tc.padA, tc.padB, tc.padC = 1+r.IntN(5), 1+r.IntN(5), 1+r.IntN(5)
				}
				check(t, r, tc)
			}
		}
	})
}

// TestSgemmAlphaBeta runs every alpha/beta combination in every transpose
// case on a shape with edges in both m and n and more than one k block.
func TestSgemmAlphaBeta(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, tr := range transes {
			for _, ab := range alphaBetas {
				check(t, r, gemmCase{tA: tr[0], tB: tr[1], m: 29, n: 37, k: kcMax + 3, alpha: ab[0], beta: ab[1], padA: 3, padB: 2, padC: 1})
			}
		}
	})
}

// TestSgemmNaNC checks that with beta == 0 C is overwritten without being
// read, so NaNs in C do not propagate.
func TestSgemmNaNC(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, tr := range transes {
			for _, s := range [][3]int{{1, 1, 1}, {13, 33, 17}, {128, 400, 20}, {12, 32, 300}} {
				for _, alpha := range []float32{1, -0.5, 0} {
					check(t, r, gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], alpha: alpha, beta: 0, padC: 2, nanC: true})
				}
			}
			// k == 0 with beta == 0 must zero C too.
			check(t, r, gemmCase{tA: tr[0], tB: tr[1], m: 5, n: 6, k: 0, alpha: 1, beta: 0, padC: 1, nanC: true})
		}
	})
}

// TestSgemmModelShapes runs the reference model's GEMM shapes, and shapes
// whose parallel split spans several nc blocks of the shared operand, with
// at least 2 goroutines so that the parallel path is checked against the
// reference too.
func TestSgemmModelShapes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	defer noAdapt()()
	shapes := []benchShape{
		{"splitM_multiNC", blas.NoTrans, blas.Trans, 1100, 530, 40},
		{"splitN_multiMC", blas.Trans, blas.NoTrans, 250, 1030, 40},
	}
	for _, s := range benchShapes {
		if s.m <= 128 || s.n <= 128 || s.k <= 128 { // keep the float64 reference cheap
			shapes = append(shapes, s)
		}
	}
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for i, s := range shapes {
			ab := alphaBetas[i%len(alphaBetas)]
			if ab[0] == 0 {
				ab[0] = 1
			}
			check(t, r, gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: ab[0], beta: ab[1], padC: i % 2})
		}
	})
}

// TestSgemmZeroSizes checks the quick returns.
func TestSgemmZeroSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tr := range transes {
		for _, s := range [][3]int{{0, 5, 3}, {5, 0, 3}, {0, 0, 0}, {4, 5, 0}} {
			for _, ab := range alphaBetas {
				check(t, r, gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], alpha: ab[0], beta: ab[1], padC: 1})
			}
		}
	}
}

// TestSgemmPanics checks that bad arguments panic exactly like gonum.
func TestSgemmPanics(t *testing.T) {
	capture := func(f func()) (msg any) {
		defer func() { msg = recover() }()
		f()
		return nil
	}
	type args struct {
		tA, tB    blas.Transpose
		m, n, k   int
		lenA, lda int
		lenB, ldb int
		lenC, ldc int
	}
	N, T := blas.NoTrans, blas.Trans
	cases := []args{
		{blas.Transpose(0), N, 2, 2, 2, 4, 2, 4, 2, 4, 2},
		{N, blas.Transpose(7), 2, 2, 2, 4, 2, 4, 2, 4, 2},
		{N, N, -1, 2, 2, 4, 2, 4, 2, 4, 2},
		{N, N, 2, -1, 2, 4, 2, 4, 2, 4, 2},
		{N, N, 2, 2, -1, 4, 2, 4, 2, 4, 2},
		{N, N, 2, 3, 4, 8, 3, 12, 3, 6, 3}, // lda < k
		{T, N, 3, 2, 4, 12, 2, 8, 2, 6, 2}, // lda < m
		{N, N, 2, 3, 4, 8, 4, 12, 2, 6, 3}, // ldb < n
		{N, T, 2, 3, 4, 8, 4, 12, 3, 6, 3}, // ldb < k
		{N, N, 2, 3, 4, 8, 4, 12, 3, 6, 2}, // ldc < n
		{N, N, 2, 3, 4, 7, 4, 12, 3, 6, 3}, // short a
		{N, N, 2, 3, 4, 8, 4, 11, 3, 6, 3}, // short b
		{N, N, 2, 3, 4, 8, 4, 12, 3, 5, 3}, // short c
		{T, T, 2, 3, 4, 7, 2, 12, 4, 6, 3}, // short a (trans)
		{T, T, 2, 3, 4, 8, 2, 11, 4, 6, 3}, // short b (trans)
		{N, N, 0, 3, 4, 0, 4, 0, 3, 0, 3},  // valid, quick return
		{N, N, 2, 3, 0, 0, 1, 0, 3, 6, 3},  // valid, k == 0
		{N, N, 0, 3, 0, 0, 0, 0, 3, 0, 3},  // lda < 1
	}
	for i, c := range cases {
		call := func(f func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) any {
			return capture(func() {
				f(c.tA, c.tB, c.m, c.n, c.k, 1, make([]float32, c.lenA), c.lda, make([]float32, c.lenB), c.ldb, 0, make([]float32, c.lenC), c.ldc)
			})
		}
		got := call(Sgemm)
		want := call(gonum.Implementation{}.Sgemm)
		if got != want {
			t.Errorf("case %d %+v: panic %v, gonum panics %v", i, c, got, want)
		}
	}
}

// TestSgemmDeterministic checks bit-identical results for GOMAXPROCS 1, 2
// and 3, with the parallel thresholds lowered so that even small problems
// are split in many different ways.
func TestSgemmDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	oldThr, oldMin, oldShared := parThreshold, minChunkFlops, maxShared
	defer func() { parThreshold, minChunkFlops, maxShared = oldThr, oldMin, oldShared }()
	defer noAdapt()()
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		shapes := [][3]int{{128, 400, 784}, {784, 400, 128}, {128, 20, 400}, {500, 784, 400}, {37, 301, 263}, {301, 37, 263}, {1100, 530, 40}}
		if KernelName() == "generic" { // slow: smaller problems
			shapes = [][3]int{{128, 20, 400}, {37, 301, 263}, {301, 37, 263}, {60, 200, 150}}
		}
		for _, s := range shapes {
			for _, tr := range transes {
				tc := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], alpha: -0.5, beta: 0.3, padA: 1, padB: 2, padC: 3}
				o := tc.operands(r)
				var first []float32
				for _, cfg := range []struct{ procs, thr, minChunk, shared int }{
					{1, oldThr, oldMin, oldShared},
					{2, oldThr, oldMin, oldShared},
					{3, oldThr, oldMin, oldShared},
					{2, 0, 1, oldShared}, // split as finely as possible
					{3, 0, 1, oldShared},
					{2, 0, 1, 0},          // without the shared packed operand
					{-1, 0, 1, oldShared}, // SetMaxThreads(1) with GOMAXPROCS 2
				} {
					threads := 0
					if cfg.procs < 0 {
						cfg.procs, threads = 2, 1
					}
					SetMaxThreads(threads)
					runtime.GOMAXPROCS(cfg.procs)
					parThreshold, minChunkFlops, maxShared = cfg.thr, cfg.minChunk, cfg.shared
					c := slices.Clone(o.c)
					Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, c, o.ldc)
					if first == nil {
						first = c
						continue
					}
					for i := range c {
						if math.Float32bits(c[i]) != math.Float32bits(first[i]) && !(math.IsNaN(float64(c[i])) && math.IsNaN(float64(first[i]))) {
							t.Fatalf("%v: GOMAXPROCS=%d threshold=%d: C[%d] = %v, serial gives %v", tc, cfg.procs, cfg.thr, i, c[i], first[i])
						}
					}
				}
				parThreshold, minChunkFlops, maxShared = oldThr, oldMin, oldShared
				SetMaxThreads(0)
			}
		}
	})
}

// TestSgemmTilingInvariance checks that an element of C does not depend on
// where the micro-tile grid falls: computing the sub-product for C[i0:, j0:]
// (which moves elements between full tiles, done in assembly, and edge
// tiles, finished in Go) gives bit-identical values. This is what makes any
// split of the work over goroutines safe.
func TestSgemmTilingInvariance(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, tr := range transes {
			for _, ab := range [][2]float32{{1, 0}, {-0.5, 1}, {0.7, 0.3}} {
				tc := gemmCase{tA: tr[0], tB: tr[1], m: 41, n: 75, k: 300, alpha: ab[0], beta: ab[1], padA: 2, padB: 1, padC: 3}
				o := tc.operands(r)
				full := slices.Clone(o.c)
				Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, full, o.ldc)
				for _, off := range [][2]int{{1, 0}, {0, 5}, {7, 13}, {13, 33}} {
					i0, j0 := off[0], off[1]
					a, b := o.a[i0*o.lda:], o.b[j0:]
					if tc.tA != blas.NoTrans {
						a = o.a[i0:]
					}
					if tc.tB != blas.NoTrans {
						b = o.b[j0*o.ldb:]
					}
					c := slices.Clone(o.c)
					Sgemm(tc.tA, tc.tB, tc.m-i0, tc.n-j0, tc.k, tc.alpha, a, o.lda, b, o.ldb, tc.beta, c[i0*o.ldc+j0:], o.ldc)
					for i := i0; i < tc.m; i++ {
						for j := j0; j < tc.n; j++ {
							if g, w := c[i*o.ldc+j], full[i*o.ldc+j]; math.Float32bits(g) != math.Float32bits(w) {
								t.Fatalf("%v offset %v: C[%d,%d] = %v, full product gives %v", tc, off, i, j, g, w)
							}
						}
					}
				}
			}
		}
	})
}

// TestAdaptiveChoice drives the serial/parallel choice with synthetic
// timings: it must settle on the faster mode and keep probing the other.
func TestAdaptiveChoice(t *testing.T) {
	defer func(s bool) { spinOK.Store(s) }(spinOK.Load())
	for _, parFaster := range []bool{true, false} {
		key := shapeKey{m: 1000 + len(stats), n: 1000, k: 1000} // big, untracked so far
		var modes []bool
		for range 200 {
			parallel, measure, st := chooseMode(key)
			if st == nil {
				t.Fatal("shape not tracked")
			}
			modes = append(modes, parallel)
			d := 1000 * time.Microsecond
			if parallel == parFaster {
				d = 600 * time.Microsecond
			}
			if measure {
				record(st, parallel, d)
			}
		}
		// Warm-up: two parallel calls, then a serial one.
		if !modes[0] || !modes[1] || modes[2] {
			t.Fatalf("parFaster=%v: warm-up modes %v", parFaster, modes[:3])
		}
		fast, slow := 0, 0
		for _, m := range modes[3:] {
			if m == parFaster {
				fast++
			} else {
				slow++
			}
		}
		if slow == 0 || slow > len(modes)/8 {
			t.Errorf("parFaster=%v: %d calls in the faster mode, %d in the slower", parFaster, fast, slow)
		}
		if spinOK.Load() != parFaster {
			t.Errorf("parFaster=%v: spinOK = %v", parFaster, spinOK.Load())
		}
	}
}

// TestSgemmNoAllocs checks that steady-state calls do not allocate, serial
// and parallel.
func TestSgemmNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(15, 16))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, s := range benchShapes[:4] {
			tc := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
			o := tc.operands(r)
			f := func() { Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc) }
			f()
			if n := testing.AllocsPerRun(20, f); n != 0 {
				t.Errorf("GOMAXPROCS=%d %v: %v allocations per call", procs, tc, n)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// gorgonia integration.

// recorder wraps Implementation and records the Sgemm call patterns that
// gorgonia issues.
type recorder struct {
	Implementation
	mu    *sync.Mutex
	calls map[string]int
}

func (r recorder) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	r.mu.Lock()
	r.calls[fmt.Sprintf("%s m=%d n=%d k=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d", transName(tA, tB), m, n, k, alpha, beta, lda, ldb, ldc)]++
	r.mu.Unlock()
	r.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// mlpGrads builds a two-layer graph cost = Σ (tanh(x·W1)·W2)², runs it with
// a tape machine and returns the cost, dcost/dx, dcost/dW1 and dcost/dW2.
func mlpGrads(t *testing.T, x, w1, w2 *tensor.Dense) (cost float32, grads [3][]float32) {
	t.Helper()
	g := G.NewGraph()
	xn := G.NewMatrix(g, G.Float32, G.WithShape(x.Shape()...), G.WithName("x"), G.WithValue(x.Clone()))
	w1n := G.NewMatrix(g, G.Float32, G.WithShape(w1.Shape()...), G.WithName("w1"), G.WithValue(w1.Clone()))
	w2n := G.NewMatrix(g, G.Float32, G.WithShape(w2.Shape()...), G.WithName("w2"), G.WithValue(w2.Clone()))
	h := G.Must(G.Tanh(G.Must(G.Mul(xn, w1n))))
	y := G.Must(G.Mul(h, w2n))
	c := G.Must(G.Sum(G.Must(G.Square(y))))
	if _, err := G.Grad(c, xn, w1n, w2n); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	cost = c.Value().Data().(float32)
	for i, n := range []*G.Node{xn, w1n, w2n} {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	return cost, grads
}

// TestGorgonia plugs Implementation into gorgonia, runs a forward and
// backward pass through two matrix products and compares with gonum's BLAS.
func TestGorgonia(t *testing.T) {
	defer G.Use(gonum.Implementation{})
	r := rand.New(rand.NewPCG(21, 22))
	rnd := func(rows, cols int) *tensor.Dense {
		return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(randSlice(r, rows*cols)))
	}
	// Big enough for the parallel path, with edges in every dimension.
	x, w1, w2 := rnd(37, 131), rnd(131, 150), rnd(150, 9)

	G.Use(gonum.Implementation{})
	wantCost, want := mlpGrads(t, x, w1, w2)

	rec := recorder{mu: new(sync.Mutex), calls: map[string]int{}}
	G.Use(rec)
	if _, ok := G.WhichBLAS().(recorder); !ok {
		t.Fatal("gorgonia.Use did not install the implementation")
	}
	gotCost, got := mlpGrads(t, x, w1, w2)
	G.Use(gonum.Implementation{})

	if len(rec.calls) == 0 {
		t.Fatal("gorgonia never called Sgemm")
	}
	var pats []string
	for p, n := range rec.calls {
		pats = append(pats, fmt.Sprintf("%s ×%d", p, n))
	}
	sort.Strings(pats)
	t.Logf("gorgonia Sgemm calls:\n%s", strings.Join(pats, "\n"))

	if d := math.Abs(float64(gotCost - wantCost)); d > 1e-4*math.Abs(float64(wantCost)) {
		t.Errorf("cost = %v, gonum gives %v", gotCost, wantCost)
	}
	for i, name := range []string{"dx", "dW1", "dW2"} {
		var maxAbs float64
		for _, v := range want[i] {
			maxAbs = max(maxAbs, math.Abs(float64(v)))
		}
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-4*maxAbs {
				t.Fatalf("%s[%d] = %v, gonum gives %v", name, j, got[i][j], want[i][j])
			}
		}
	}

	// And the plain value (not a recorder) is accepted by both packages.
	G.Use(Implementation{})
	tensor.Use(Implementation{})
	if _, ok := G.WhichBLAS().(Implementation); !ok {
		t.Error("gorgonia.Use(Implementation{}) not installed")
	}
	gotCost2, got2 := mlpGrads(t, x, w1, w2)
	if gotCost2 != gotCost {
		t.Errorf("cost with Implementation{} = %v, with recorder %v", gotCost2, gotCost)
	}
	for i := range got2 {
		for j := range got2[i] {
			if got2[i][j] != got[i][j] {
				t.Fatalf("grad %d differs between runs", i)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmarks.

type benchShape struct {
	name    string
	tA, tB  blas.Transpose
	m, n, k int
}

// benchShapes are the reference model's GEMMs (batch 128; m×k·k×n), forward
// and backward, plus the evaluation batches.
var benchShapes = []benchShape{
	// forward y = x·W
	{"fwd_128x784x400", blas.NoTrans, blas.NoTrans, 128, 400, 784},
	{"fwd_128x400x20", blas.NoTrans, blas.NoTrans, 128, 20, 400},
	{"fwd_128x20x400", blas.NoTrans, blas.NoTrans, 128, 400, 20},
	{"fwd_128x400x784", blas.NoTrans, blas.NoTrans, 128, 784, 400},
	// backward dx = dy·Wᵀ
	{"dx_128x400x784", blas.NoTrans, blas.Trans, 128, 784, 400},
	{"dx_128x20x400", blas.NoTrans, blas.Trans, 128, 400, 20},
	{"dx_128x400x20", blas.NoTrans, blas.Trans, 128, 20, 400},
	{"dx_128x784x400", blas.NoTrans, blas.Trans, 128, 400, 784},
	// backward dW = xᵀ·dy
	{"dW_784x128x400", blas.Trans, blas.NoTrans, 784, 400, 128},
	{"dW_400x128x20", blas.Trans, blas.NoTrans, 400, 20, 128},
	{"dW_20x128x400", blas.Trans, blas.NoTrans, 20, 400, 128},
	{"dW_400x128x784", blas.Trans, blas.NoTrans, 400, 784, 128},
	// evaluation batches
	{"fwd_500x784x400", blas.NoTrans, blas.NoTrans, 500, 400, 784},
	{"fwd_500x400x784", blas.NoTrans, blas.NoTrans, 500, 784, 400},
	{"fwd_1000x784x400", blas.NoTrans, blas.NoTrans, 1000, 400, 784},
	{"fwd_1000x400x784", blas.NoTrans, blas.NoTrans, 1000, 784, 400},
	// the fourth transpose case
	{"TT_128x784x400", blas.Trans, blas.Trans, 128, 400, 784},
}

func transName(tA, tB blas.Transpose) string {
	s := ""
	for _, x := range []blas.Transpose{tA, tB} {
		if x == blas.NoTrans {
			s += "N"
		} else {
			s += "T"
		}
	}
	return s
}

// BenchmarkSgemm/<shape>/<trans>/<impl>/p<GOMAXPROCS> reports GFLOP/s for
// this package ("ours") and gonum side by side. Shapes are named
// <m>x<k>x<n>.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	impls := []struct {
		name string
		f    func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}{{"ours", Sgemm}, {"gonum", gonum.Implementation{}.Sgemm}}
	for _, s := range benchShapes {
		tc := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
		o := tc.operands(r)
		b.Run(s.name+"/"+transName(s.tA, s.tB), func(b *testing.B) {
			for _, im := range impls {
				for _, procs := range []int{1, 2} {
					b.Run(fmt.Sprintf("%s/p%d", im.name, procs), func(b *testing.B) {
						defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
						for b.Loop() {
							im.f(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
						}
						b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					})
				}
			}
		})
	}
}

// stepShapes are the GEMMs of one training step of the reference model
// (784-400-20-400-784, batch 128), in the order gorgonia issues them:
// forward, then backward (dX = dY·Wᵀ as NT, dW = Xᵀ·dY as TN).
var stepShapes = []benchShape{
	{"x·W1", blas.NoTrans, blas.NoTrans, 128, 400, 784},
	{"h·Wmu", blas.NoTrans, blas.NoTrans, 128, 20, 400},
	{"h·Wlv", blas.NoTrans, blas.NoTrans, 128, 20, 400},
	{"z·W3", blas.NoTrans, blas.NoTrans, 128, 400, 20},
	{"h3·W4", blas.NoTrans, blas.NoTrans, 128, 784, 400},
	{"dW4", blas.Trans, blas.NoTrans, 400, 784, 128},
	{"dh3", blas.NoTrans, blas.Trans, 128, 400, 784},
	{"dW3", blas.Trans, blas.NoTrans, 20, 400, 128},
	{"dz", blas.NoTrans, blas.Trans, 128, 20, 400},
	{"dWmu", blas.Trans, blas.NoTrans, 400, 20, 128},
	{"dWlv", blas.Trans, blas.NoTrans, 400, 20, 128},
	{"dh(mu)", blas.NoTrans, blas.Trans, 128, 400, 20},
	{"dh(lv)", blas.NoTrans, blas.Trans, 128, 400, 20},
	{"dW1", blas.Trans, blas.NoTrans, 784, 400, 128},
}

// BenchmarkSgemmStep/<impl>/p<GOMAXPROCS> runs the GEMMs of one training
// step back to back (≈ 420 MFLOP) and reports GFLOP/s; ns/op is the GEMM
// time per step.
func BenchmarkSgemmStep(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	var ops []operands
	var flops float64
	for _, s := range stepShapes {
		ops = append(ops, gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1}.operands(r))
		flops += 2 * float64(s.m*s.n*s.k)
	}
	for _, im := range []struct {
		name string
		f    func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}{{"ours", Sgemm}, {"gonum", gonum.Implementation{}.Sgemm}} {
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/p%d", im.name, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				for b.Loop() {
					for i, s := range stepShapes {
						o := ops[i]
						im.f(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestDirectBMatchesPacked: products that read B in place (few rows, B not
// transposed: full, half and narrower edge panels, several k blocks, every
// update mode, padded leading dimensions, serial and parallel) equal bit
// for bit the same products with B packed.
func TestDirectBMatchesPacked(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	oldKc, oldDirect := kcMax, directMaxRows
	defer func() { kcMax, directMaxRows = oldKc, oldDirect }()
	defer noAdapt()()
	r := rand.New(rand.NewPCG(31, 32))
	for _, kc := range []int{oldKc, 40} {
		kcMax = kc
		for _, m := range []int{1, 4, 5, 12, 13, 64, 100, 128} {
			for _, nk := range [][2]int{{400, 784}, {784, 400}, {20, 400}, {400, 20}, {16, 33}, {45, 70}, {48, 9}} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.3}} {
					tc := gemmCase{tA: blas.NoTrans, tB: blas.NoTrans, m: m, n: nk[0], k: nk[1], alpha: ab[0], beta: ab[1], padA: 1, padB: 3, padC: 2}
					o := tc.operands(r)
					for _, procs := range []int{1, 2} {
						runtime.GOMAXPROCS(procs)
						var res [2][]float32
						for i, d := range []int{0, oldDirect} {
							directMaxRows = d
							res[i] = slices.Clone(o.c)
							Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, res[i], o.ldc)
						}
						for j := range res[0] {
							if math.Float32bits(res[0][j]) != math.Float32bits(res[1][j]) && !(math.IsNaN(float64(res[0][j])) && math.IsNaN(float64(res[1][j]))) {
								t.Fatalf("%v kc %d procs %d: C[%d] = %v in place, %v packed", tc, kc, procs, j, res[1][j], res[0][j])
							}
						}
					}
				}
			}
		}
	}
}
