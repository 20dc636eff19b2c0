package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"syscall"
	"testing"
)

func mixtureData(n int, means []float64, seed uint64) ([]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n)
	lab := make([]int, n)
	for i := range x {
		lab[i] = rng.IntN(len(means))
		x[i] = means[lab[i]] + rng.NormFloat64()
	}
	return x, lab
}

func TestMixtureCAVIMonotoneAndRecovers(t *testing.T) {
	means := []float64{-8, 0, 7}
	x, lab := mixtureData(3000, means, 3)
	mx, err := FitMixture(context.Background(), x, MixtureOptions{K: 3, Seed: 1, Sigma2: 100, Tol: -1, MaxIter: 60})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(mx.ELBO); i++ {
		if mx.ELBO[i] < mx.ELBO[i-1]-1e-9*math.Abs(mx.ELBO[i-1]) {
			t.Fatalf("ELBO fell at iteration %d: %.10g -> %.10g", i, mx.ELBO[i-1], mx.ELBO[i])
		}
	}
	got := append([]float64(nil), mx.M...)
	sort.Float64s(got)
	for k := range means {
		if math.Abs(got[k]-means[k]) > 0.15 {
			t.Errorf("mean %d = %.3f, want %.3f", k, got[k], means[k])
		}
	}
	if ari := AdjustedRand(lab, mx.Assign); ari < 0.95 {
		t.Errorf("ARI %.3f, want > 0.95", ari)
	}
}

// The ELBO computed from the sums equals the one computed term by term from
// the stored responsibilities.
func TestMixtureELBODirect(t *testing.T) {
	x, _ := mixtureData(200, []float64{-3, 3}, 5)
	mx, err := FitMixture(context.Background(), x, MixtureOptions{K: 2, Seed: 2, MaxIter: 3, Tol: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Fitted q(mu) with q(c) optimal for it: compute directly.
	phi := mx.Responsibilities(x)
	var e float64
	for k := 0; k < 2; k++ {
		m, s2 := mx.M[k], mx.S2[k]
		e += -0.5*math.Log(2*math.Pi*mx.Sigma2) - (s2+m*m)/(2*mx.Sigma2) // E log p(mu)
		e += 0.5 * math.Log(2*math.Pi*math.E*s2)                         // H q(mu)
	}
	for i, v := range x {
		for k := 0; k < 2; k++ {
			p := phi[i][k]
			m, s2 := mx.M[k], mx.S2[k]
			ell := -0.5*math.Log(2*math.Pi) - 0.5*(v*v-2*v*m+s2+m*m)
			e += p * (math.Log(0.5) + ell - math.Log(p))
		}
	}
	if got := mx.ELBOAt(x); math.Abs(got-e) > 1e-8*math.Abs(e) {
		t.Errorf("ELBOAt %.10g, direct %.10g", got, e)
	}
}

func TestMixtureSVIAgreesWithCAVI(t *testing.T) {
	x, _ := mixtureData(20000, []float64{-6, 0, 6}, 7)
	c, err := FitMixture(context.Background(), x, MixtureOptions{K: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := FitMixtureSVI(context.Background(), x, MixtureOptions{K: 3, Seed: 1}, SVIOptions{Batch: 500, Steps: 400, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cm, sm := append([]float64(nil), c.M...), append([]float64(nil), s.M...)
	sort.Float64s(cm)
	sort.Float64s(sm)
	for k := range cm {
		if math.Abs(cm[k]-sm[k]) > 0.05 {
			t.Errorf("mean %d: CAVI %.4f, SVI %.4f", k, cm[k], sm[k])
		}
	}
	ce, se := c.ELBO[len(c.ELBO)-1], s.ELBOAt(x)
	if se > ce+1e-6*math.Abs(ce) || ce-se > 1e-3*math.Abs(ce) {
		t.Errorf("ELBO: CAVI %.6g, SVI %.6g", ce, se)
	}
}

func TestMixtureBadInput(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		x []float64
		k int
	}{{nil, 2}, {[]float64{1, 2}, 3}, {[]float64{1, math.NaN()}, 1}, {[]float64{1}, 0}} {
		if _, err := FitMixture(ctx, tc.x, MixtureOptions{K: tc.k}); err == nil {
			t.Errorf("FitMixture(%v, K=%d): no error", tc.x, tc.k)
		}
	}
}

// BenchmarkMixtureCAVI: one CAVI iteration (a sweep and the update) on
// 1,000,000 points with K = 10; the issue asks for at least 10 per second.
func BenchmarkMixtureCAVI(b *testing.B) {
	means := []float64{-20, -15, -10, -5, 0, 5, 10, 15, 20, 25}
	x, _ := mixtureData(1_000_000, means, 1)
	ctx := context.Background()
	mx, err := FitMixture(ctx, x, MixtureOptions{K: 10, MaxIter: 1, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	st := newMixStats(10)
	assign := make([]int, len(x))
	workers := runtime.GOMAXPROCS(0)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mx.sweep(x, assign, st, workers)
		mx.update(st, 1)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "iters/s")
	// CPU seconds per iteration, summed over the workers: on a machine
	// shared with other jobs the wall clock says little, this says more.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/iter")
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func TestExpNeg(t *testing.T) {
	for d := -720.0; d <= 0; d += 0.0137 {
		want, got := math.Exp(d), expNeg(d)
		if math.Abs(got-want) > 1e-15*want && !(d < -708 && got == 0) {
			t.Fatalf("expNeg(%v) = %v, want %v (rel %.3g)", d, got, want, (got-want)/want)
		}
	}
	if expNeg(0) != 1 {
		t.Errorf("expNeg(0) = %v", expNeg(0))
	}
}
