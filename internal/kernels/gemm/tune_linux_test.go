//go:build linux

package gemm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// processCPU returns the CPU time consumed by the process. With
// GOMAXPROCS=1, timing with it makes single-core measurements robust against
// other processes competing for the cores (gonum's Sgemm runs its work on
// other goroutines, so the thread CPU time would not do).
func processCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// cpuGFLOPS runs f reps times per round and returns the best per-round
// GFLOP/s measured in thread CPU time.
func cpuGFLOPS(flops float64, reps, rounds int, f func()) float64 {
	if runtime.GOMAXPROCS(0) != 1 {
		panic("cpuGFLOPS needs GOMAXPROCS=1")
	}
	f()
	best := time.Duration(1 << 62)
	for range rounds {
		t0 := processCPU()
		for range reps {
			f()
		}
		best = min(best, processCPU()-t0)
	}
	return flops * float64(reps) / best.Seconds() / 1e9
}

// TestTune sweeps the cache-blocking parameters single-core (GEMM_TUNE=1).
func TestTune(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip("set GEMM_TUNE=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	oldKC, oldMC, oldNC := kcMax, mcMax, ncMax
	defer func() { kcMax, mcMax, ncMax = oldKC, oldMC, oldNC }()
	r := rand.New(rand.NewPCG(1, 1))
	kcs := []int{256, 512, 1024}
	mcs := []int{48, 96, 192}
	ncs := []int{512, 1536}
	if s := os.Getenv("GEMM_TUNE_QUICK"); s != "" {
		kcs, mcs, ncs = []int{oldKC}, []int{oldMC}, []int{oldNC}
	}
	if name := os.Getenv("GEMM_TUNE_KERNEL"); name != "" {
		for _, k := range kernels {
			if k.name == name {
				defer setKernel(setKernel(k))
			}
		}
	}
	t.Logf("kernel %s", KernelName())
	for _, s := range benchShapes {
		if f := os.Getenv("GEMM_TUNE_SHAPE"); f != "" && !strings.Contains(s.name, f) {
			continue
		}
		tc := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
		o := tc.operands(r)
		flops := 2 * float64(s.m*s.n*s.k)
		reps := max(1, int(1e8/flops))
		var line []string
		for _, kc := range kcs {
			for _, mc := range mcs {
				for _, nc := range ncs {
					kcMax, mcMax, ncMax = kc, mc, nc
					g := cpuGFLOPS(flops, reps, 25, func() {
						Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
					})
					line = append(line, fmt.Sprintf("kc%d/mc%d/nc%d:%.1f", kc, mc, nc, g))
				}
			}
		}
		if os.Getenv("GEMM_TUNE_GONUM") != "" {
			g := cpuGFLOPS(flops, max(1, reps/10), 5, func() {
				gonum.Implementation{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
			})
			line = append(line, fmt.Sprintf("gonum:%.1f", g))
		}
		t.Logf("%s %s: %s", s.name, transName(s.tA, s.tB), strings.Join(line, " "))
	}
}

// TestTuneKernel measures the micro-kernels alone on L1-resident panels
// (GEMM_TUNE=1): the practical peak.
func TestTuneKernel(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip("set GEMM_TUNE=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, k := range kernels {
		for _, kc := range []int{64, 128, 256, 512} {
			a := aligned(k.mr * kc)
			b := aligned(k.nr * kc)
			c := aligned(k.mr * k.nr)
			flops := 2 * float64(k.mr*k.nr*kc)
			g := cpuGFLOPS(flops, int(1e9/flops), 5, func() {
				k.fn(kc, &a[0], &b[0], &c[0], k.nr, 1, 0, modeAdd)
			})
			t.Logf("%s kc=%d: %.1f GFLOP/s", k.name, kc, g)
		}
	}
}

// wallGFLOPS is cpuGFLOPS with wall-clock time (for multi-core runs).
func wallGFLOPS(flops float64, reps, rounds int, f func()) float64 {
	f()
	best := time.Duration(1 << 62)
	for range rounds {
		t0 := time.Now()
		for range reps {
			f()
		}
		best = min(best, time.Since(t0))
	}
	return flops * float64(reps) / best.Seconds() / 1e9
}

// TestTunePar compares 1 and 2 goroutines around the parallel threshold
// (GEMM_TUNE=1), best of many short wall-clock rounds.
func TestTunePar(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip("set GEMM_TUNE=1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	oldThr := parThreshold
	defer func() { parThreshold = oldThr }()
	parThreshold = 0
	defer noAdapt()()
	spinOK.Store(true)
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []benchShape{
		{"128x20x64", 0, 0, 128, 64, 20},
		{"128x20x128", 0, 0, 128, 128, 20},
		{"128x20x400", 0, 0, 128, 400, 20},
		{"128x400x20", 0, 0, 128, 20, 400},
		{"128x64x128", 0, 0, 128, 128, 64},
		{"128x128x128", 0, 0, 128, 128, 128},
		{"128x128x224", 0, 0, 128, 224, 128},
		{"128x128x256", 0, 0, 128, 256, 128},
		{"128x128x288", 0, 0, 128, 288, 128},
		{"128x256x128", 0, 0, 128, 128, 256},
		{"128x256x256", 0, 0, 128, 256, 256},
		{"128x400x400", 0, 0, 128, 400, 400},
		{"128x784x400", 0, 0, 128, 400, 784},
		{"400x128x20", blas.Trans, 0, 400, 20, 128},
		{"20x128x400", blas.Trans, 0, 20, 400, 128},
	} {
		if s.tA == 0 {
			s.tA = blas.NoTrans
		}
		s.tB = blas.NoTrans
		tc := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
		o := tc.operands(r)
		flops := 2 * float64(s.m*s.n*s.k)
		reps := max(1, int(1e7/flops))
		var res []string
		for _, procs := range []int{1, 2, 1, 2} {
			runtime.GOMAXPROCS(procs)
			g := wallGFLOPS(flops, reps, 200, func() {
				Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
			})
			res = append(res, fmt.Sprintf("p%d:%.1f", procs, g))
		}
		t.Logf("%-12s %6.2f MFLOP: %s", s.name, flops/1e6, strings.Join(res, " "))
	}
}

// TestTuneAB compares, under whatever load the machine has, serial calls
// with default (adaptive, up to GOMAXPROCS goroutines) calls of the same
// shape in alternating blocks, so that both see the same conditions
// (GEMM_TUNE=1).
func TestTuneAB(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip("set GEMM_TUNE=1")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes[:12] {
		tc := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1, beta: 0}
		o := tc.operands(r)
		f := func() { Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc) }
		var tot [2]time.Duration
		var cnt [2]int
		const block = 16
		for round := range 20 {
			mode := round % 2 // 0: serial, 1: default
			SetMaxThreads(1 - mode)
			for i := range block {
				t0 := time.Now()
				f()
				if i > 0 {
					tot[mode] += time.Since(t0)
					cnt[mode]++
				}
			}
		}
		SetMaxThreads(0)
		ser := tot[0] / time.Duration(cnt[0])
		par := tot[1] / time.Duration(cnt[1])
		t.Logf("%-18s %s serial %9v default %9v speed-up %.2f", s.name, transName(s.tA, s.tB), ser, par, float64(ser)/float64(par))
	}
}
