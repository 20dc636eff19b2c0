package gemm

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestSharedPacksBitIdentical: products whose B is a registered matrix give
// bit for bit what Sgemm gives without the set, for both layouts of B
// (a weight in the forward product and transposed in the input gradient),
// several k blocks, serial and parallel runs and goroutines multiplying
// concurrently by replicas of one B (as training shards do); after the
// values change and the set is opened again, the packs are made anew
// (ahead of the products, by Fill).
func TestSharedPacksBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	oldKc, oldDirect := kcMax, directMaxRows
	defer func() { kcMax, directMaxRows = oldKc, oldDirect }()
	directMaxRows = 0 // every B packed (shared) rather than read in place
	defer noAdapt()()
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, kc := range []int{oldKc, 96} { // 96: several k blocks
			kcMax = kc
			for _, s := range [][3]int{{64, 400, 784}, {64, 784, 400}, {64, 20, 400}, {37, 301, 263}, {700, 45, 300}} {
				for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
					tc := gemmCase{tA: blas.NoTrans, tB: tB, m: s[0], n: s[1], k: s[2], alpha: 1, beta: 0, padA: 1, padB: 3, padC: 2}
					checkShared(t, r, tc)
				}
			}
		}
	})
}

func checkShared(t *testing.T, r *rand.Rand, tc gemmCase) {
	t.Helper()
	const replicas = 3
	o := tc.operands(r)
	bs := [replicas][]float32{o.b}
	for i := 1; i < replicas; i++ {
		bs[i] = slices.Clone(o.b)
	}
	sp := NewSharedPacks()
	sp.Add(bs[:]...)
	defer sp.Release()
	for round := range 2 {
		if round == 1 { // new values in every replica
			for i := range o.b {
				v := float32(r.NormFloat64())
				for _, b := range bs {
					b[i] = v
				}
			}
		}
		want := make([]float32, len(o.c))
		Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, want, o.ldc)
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			sp.Open()
			if round == 1 {
				sp.Fill() // the layout is known: pack it ahead
			}
			got := make([][]float32, replicas)
			var wg sync.WaitGroup
			for i := range replicas {
				got[i] = make([]float32, len(o.c))
				wg.Go(func() {
					Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, bs[i], o.ldb, tc.beta, got[i], o.ldc)
				})
			}
			wg.Wait()
			sp.Close()
			for i, c := range got {
				for j := range c {
					if math.Float32bits(c[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%v round %d procs %d replica %d: C[%d] = %v, without sharing %v", tc, round, procs, i, j, c[j], want[j])
					}
				}
			}
		}
	}
	if len(sp.packs) != 1 || len(sp.packs[0]) != 1 {
		t.Fatalf("%v: %d groups, want one packed layout", tc, len(sp.packs))
	}
}

// TestSharedPacksMisses: a closed or released set, a product reading past
// the registered matrix, and an unregistered B all take the ordinary path.
func TestSharedPacksMisses(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	defer func(d int) { directMaxRows = d }(directMaxRows)
	directMaxRows = 0
	m, n, k := 8, 40, 30
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	sp := NewSharedPacks()
	sp.Add(b[:k*n-1]) // one element short of the product's extent
	p := func(bb []float32) *problem {
		var p problem
		p.init(active.Load(), false, false, m, n, k, 1, a, k, bb, n, 0, make([]float32, m*n), n)
		return &p
	}
	if sharedB(p(b)) != nil {
		t.Fatal("closed set: got a shared pack")
	}
	sp.Open()
	if sharedB(p(b)) != nil {
		t.Fatal("product beyond the registered matrix: got a shared pack")
	}
	if sharedB(p(slices.Clone(b))) != nil {
		t.Fatal("unregistered B: got a shared pack")
	}
	sp.Release()
	sp2 := NewSharedPacks()
	sp2.Add(b)
	sp2.Open()
	if sharedB(p(b)) == nil {
		t.Fatal("registered, open: no shared pack")
	}
	sp2.Release()
	if sharedB(p(b)) != nil || sharedCount.Load() != 0 {
		t.Fatalf("released: shared pack, or %d matrices still registered", sharedCount.Load())
	}
}
