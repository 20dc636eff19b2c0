package amortized_test

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/memstat"
)

func referenceRows(n int) [][]float32 {
	rng := rand.New(rand.NewPCG(2, 2))
	x := make([][]float32, n)
	for i := range x {
		x[i] = make([]float32, 784)
		for j := range x[i] {
			if rng.Float64() < 0.13 {
				x[i][j] = 1
			}
		}
	}
	return x
}

// TestLogLikelihoodMemoryDoesNotGrowWithK: samples go through the decoder in
// chunks of at most 500, so the peak resident memory must not grow with k.
// Pushing all k = 20,000 samples of an image through at once would take
// over 200 MiB more (about 12 KB of activations per sample).
func TestLogLikelihoodMemoryDoesNotGrowWithK(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates 22,000 decoder passes")
	}
	if _, err := memstat.Read(); err != nil {
		t.Skip(err)
	}
	m, err := amortized.New(amortized.ReferenceConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	x := referenceRows(1)
	peak := func(k int) uint64 {
		runtime.GC()
		if err := memstat.ResetPeak(); err != nil {
			t.Skip(err)
		}
		if _, err := m.LogLikelihood(x, k, rand.New(rand.NewPCG(1, 1))); err != nil {
			t.Fatal(err)
		}
		u, err := memstat.Read()
		if err != nil {
			t.Fatal(err)
		}
		return u.Peak
	}
	small, large := peak(2000), peak(20000)
	t.Logf("peak RSS: k=2000 %.1f MiB, k=20000 %.1f MiB", float64(small)/(1<<20), float64(large)/(1<<20))
	if large > small+64<<20 {
		t.Fatalf("peak RSS grew from %d MiB (k=2000) to %d MiB (k=20000)", small>>20, large>>20)
	}
}

// BenchmarkLogLikelihoodK5000Memory evaluates 4 images with k = 5000 on the
// reference model and reports the peak resident memory and images per second.
func BenchmarkLogLikelihoodK5000Memory(b *testing.B) {
	if _, err := memstat.Read(); err != nil {
		b.Skip(err)
	}
	m, err := amortized.New(amortized.ReferenceConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	x := referenceRows(4)
	if err := memstat.ResetPeak(); err != nil {
		b.Logf("the peak includes earlier work in this process: %v", err)
	}
	for b.Loop() {
		if _, err := m.LogLikelihood(x, 5000, rand.New(rand.NewPCG(1, 1))); err != nil {
			b.Fatal(err)
		}
	}
	u, _ := memstat.Read()
	b.ReportMetric(float64(u.Peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "images/s")
}
