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
)

// threadCPU returns the CPU time consumed by the calling OS thread. Timing
// with it (on a locked thread) makes single-core tuning robust against other
// processes competing for the cores.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// cpuGFLOPS runs f reps times per round and returns the best per-round
// GFLOP/s measured in thread CPU time.
func cpuGFLOPS(flops float64, reps, rounds int, f func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f()
	best := time.Duration(1 << 62)
	for range rounds {
		t0 := threadCPU()
		for range reps {
			f()
		}
		best = min(best, threadCPU()-t0)
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
	kcs := []int{256, 384, 512, 640, 800, 1024}
	mcs := []int{96, 192, 1024}
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
		t.Logf("%s %s: %s", s.name, transName(s.tA, s.tB), strings.Join(line, " "))
	}
}

// TestTuneKernel measures the micro-kernels alone on L1-resident panels
// (GEMM_TUNE=1): the practical peak.
func TestTuneKernel(t *testing.T) {
	if os.Getenv("GEMM_TUNE") == "" {
		t.Skip("set GEMM_TUNE=1")
	}
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
