package amortized

import (
	"cmp"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestDiagLogWMatchesGraph checks diagLogW's path against the kindLogW
// graph's, to the bit: log p(x), its errors, ESS and replicates, with
// several rows per chunk (k < 500), rows split across chunks and padded
// chunks (k = 700, 1000), 1 and 3 workers, the fused Bernoulli term (x
// left in the graph's input between chunks) and a Gaussian likelihood.
func TestDiagLogWMatchesGraph(t *testing.T) {
	ref := ReferenceConfig()
	ref.Hidden = []int{40}
	gauss := smallConfig("float32", Gaussian)
	for _, tc := range []struct {
		cfg Config
		n   int
		ks  []int
	}{
		{ref, 5, []int{1, 7, 700, 1000}},
		{gauss, 9, []int{3, 700}},
	} {
		m, err := New(tc.cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		drawZeroInitHeads(m, 3)
		if !m.diagLogW() {
			t.Fatalf("%v: not on the direct path", tc.cfg.Likelihood)
		}
		x := rowsOf(synthetic(tc.n, tc.cfg.DataDim, 4), tc.cfg.DataDim)
		run := func(direct bool, k, procs int) *LLEstimate {
			defer func(d bool) { diagDirect = d }(diagDirect)
			diagDirect = direct
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			e, err := m.LogLikelihoodEstimate(x, k, 3, rand.New(rand.NewPCG(5, uint64(k))))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		for _, k := range tc.ks {
			want := run(false, k, 2)
			for _, procs := range []int{1, 3} {
				got := run(true, k, procs)
				name := cmp.Or(tc.cfg.Likelihood, Bernoulli)
				if !slices.Equal(got.LogPx, want.LogPx) {
					t.Fatalf("%s k=%d procs=%d: log p(x) %v, graph %v", name, k, procs, got.LogPx, want.LogPx)
				}
				if k > 1 && !slices.Equal(got.DeltaSE, want.DeltaSE) || !slices.Equal(got.ESS, want.ESS) {
					t.Fatalf("%s k=%d procs=%d: errors differ", name, k, procs)
				}
				for i := range got.Replicates {
					if !slices.Equal(got.Replicates[i], want.Replicates[i]) {
						t.Fatalf("%s k=%d procs=%d: row %d's replicates %v, graph %v", name, k, procs, i, got.Replicates[i], want.Replicates[i])
					}
				}
			}
		}
	}
}
