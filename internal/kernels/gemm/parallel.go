package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govae/govae/internal/kernels/cores"
)

// Parallelism. A problem whose flop count reaches parThreshold is cut into
// chunks along n (or along m when m > n) at micro-tile granularity, and the
// chunks are claimed dynamically by the calling goroutine and up to
// GOMAXPROCS-1 helper goroutines. The operand that is not split (A when
// splitting n) is needed by every chunk: the caller packs all of it once
// into a shared buffer while the helpers wake up and pack their first block
// of the other operand, and after that each chunk only packs its own part
// of the other operand. k is never split and the k blocking only depends on
// k, so every element of C is summed in the same order whatever the number
// of goroutines: results are bit-identical.
//
// The caller never waits for a helper that has not started (it just does
// all the chunks itself); it only waits for chunks that are in progress.
var (
	// parThreshold is the minimum 2·m·n·k for considering a parallel
	// run. With a helper already awake (spinning, see helperSpin), 2 MFLOP
	// products (≈ 20–40 µs) ran 1.2–1.6× faster on 2 cores on the quiet
	// machine and 0.3–0.7 MFLOP ones not at all; with a helper to wake
	// (50–100 µs) products below ≈ 8 MFLOP lose, so products below
	// bigFlops only go parallel when a helper is awake. Above the threshold
	// the adaptive choice below settles, per shape, on whichever is faster.
	parThreshold = 1_500_000
	// maxChunksPerWorker bounds the number of chunks when the operand that
	// is not split is shared (chunks then cost almost nothing extra); small
	// chunks let the workers balance the load when one of them gets less
	// CPU time (other processes on the machine).
	maxChunksPerWorker = 8
	// minChunkFlops keeps chunks from becoming tiny.
	minChunkFlops = 250_000
	// maxShared bounds the shared packed operand (floats); beyond it every
	// chunk packs its own blocks of both operands, and there are only two
	// chunks per worker.
	maxShared = 1 << 22
	// spinWait is how long the caller spins (yielding) for the chunks still
	// in progress on helpers before blocking.
	spinWait = 50 * time.Microsecond
)

type task struct {
	p       problem
	splitN  bool // split along n (else along m)
	units   int  // number of micro-tiles along the split dimension
	nchunks int
	next    atomic.Int64  // next chunk to claim
	done    atomic.Int64  // chunks completed
	doneCh  chan struct{} // receives once all chunks are completed
	refs    atomic.Int32  // goroutines holding the task; the last one recycles it

	// Shared packed operand (A if splitN, else B); nil when not shared.
	shared    []float32
	sharedBuf []float32   // keeps the allocation across uses of the task
	ready     atomic.Bool // shared is completely packed
}

var taskPool = sync.Pool{New: func() any { return &task{doneCh: make(chan struct{}, 1)} }}

// release drops a reference to t, recycling it after the last one.
func (t *task) release() {
	if t.refs.Add(-1) == 0 {
		t.p.a, t.p.b, t.p.c, t.shared = nil, nil, nil, nil
		taskPool.Put(t)
	}
}

// packShared packs all of the shared operand, one k block at a time, in
// the layout documented at compute.
func (t *task) packShared() {
	p := &t.p
	for pc := 0; pc < p.k; pc += p.kc {
		kb := min(p.kc, p.k-pc)
		if t.splitN {
			p.packA(t.shared[pc*p.mPad:], 0, p.m, pc, kb)
		} else {
			p.packB(t.shared[pc*p.nPad:], 0, p.n, pc, kb)
		}
	}
}

// work claims and computes chunks until none is left.
func (t *task) work() {
	if int(t.next.Load()) >= t.nchunks {
		return // late helper: nothing left
	}
	ws := wsPool.Get().(*workspace)
	var sharedA, sharedB []float32
	if t.splitN {
		sharedA = t.shared
	} else {
		sharedB = t.shared
	}
	var ready *atomic.Bool
	if t.shared != nil && !t.ready.Load() {
		ready = &t.ready
	}
	p := &t.p
	for {
		i := int(t.next.Add(1) - 1)
		if i >= t.nchunks {
			break
		}
		u0 := i * t.units / t.nchunks
		u1 := (i + 1) * t.units / t.nchunks
		if t.splitN {
			p.compute(ws, 0, p.m, u0*p.kern.nr, min(u1*p.kern.nr, p.n), sharedA, nil, ready)
		} else {
			p.compute(ws, u0*p.kern.mr, min(u1*p.kern.mr, p.m), 0, p.n, nil, sharedB, ready)
		}
		ready = nil
		if int(t.done.Add(1)) == t.nchunks {
			t.doneCh <- struct{}{}
		}
	}
	wsPool.Put(ws)
}

// Helper goroutines are started on demand. After finishing a task a helper
// spins (yielding to other goroutines) for helperSpin, polling spinSlots,
// and then blocks on helperCh. Waking a blocked helper costs 50–100 µs on
// this VM (futex wake of an idle thread, IPI to a halted vCPU), as much as
// a 5–10 MFLOP product, while the GEMMs of a training step come in quick
// succession: the spinning keeps the helpers hot across them.
var (
	helperCh    = make(chan *task) // a send succeeds at once only if a helper is blocked idle
	helperCount atomic.Int64
	spinners    atomic.Int32 // helpers currently polling spinSlots
	spinSlots   [8]atomic.Pointer[task]
	// helperSpin is how long an idle helper keeps polling for new work.
	helperSpin = 300 * time.Microsecond
)

const maxHelpers = 64

func helper() {
	for t := range helperCh {
		for t != nil {
			t.work()
			t.release()
			t = spinForTask()
		}
	}
}

// spinForTask polls spinSlots for up to helperSpin, unless spinning is
// currently unwelcome (see chooseMode).
func spinForTask() *task {
	if !spinOK.Load() || !cores.Spare() {
		return nil
	}
	spinners.Add(1)
	defer spinners.Add(-1)
	start := time.Now()
	for i := 0; ; i++ {
		for j := range spinSlots {
			if spinSlots[j].Load() != nil {
				if t := spinSlots[j].Swap(nil); t != nil {
					return t
				}
			}
		}
		if i&15 == 15 && (time.Since(start) > helperSpin || !spinOK.Load() || !cores.Spare()) {
			return nil
		}
		runtime.Gosched()
	}
}

// dispatch hands t to one more helper: a spinning one if any, else a blocked
// one, else a new one. It reports false if none can be had.
func dispatch(t *task) bool {
	if spinners.Load() > 0 {
		for j := range spinSlots {
			if spinSlots[j].CompareAndSwap(nil, t) {
				return true
			}
		}
	}
	select {
	case helperCh <- t:
		return true
	default:
	}
	if helperCount.Load() < maxHelpers {
		helperCount.Add(1)
		go helper()
		helperCh <- t
		return true
	}
	return false
}

// reclaim takes back the copies of t that no spinning helper picked up.
func reclaim(t *task) {
	for j := range spinSlots {
		if spinSlots[j].Load() == t && spinSlots[j].CompareAndSwap(t, nil) {
			t.release()
		}
	}
}

// plan is how a problem is split over goroutines.
type plan struct {
	splitN  bool // split along n (else along m)
	shared  bool // pack the operand that is not split once, for all chunks
	units   int  // micro-tiles along the split dimension
	nchunks int
	workers int // goroutines, the caller included
}

// makePlan decides how to run p on up to procs goroutines (workers == 1:
// serially).
func makePlan(p *problem, procs int) plan {
	pl := plan{workers: 1}
	flops := 2 * p.m * p.n * p.k
	if procs < 2 || flops < parThreshold {
		return pl
	}
	// Splitting n needs all of A in every chunk, splitting m all of B:
	// split the larger dimension, so that the operand every chunk needs
	// (packed once and shared, or else packed again by every chunk) is the
	// smaller one.
	pl.splitN = p.n >= p.m
	perWorker := maxChunksPerWorker
	if pl.splitN {
		pl.units = p.nPad / p.kern.nr
		pl.shared = p.mPad*p.k <= maxShared
	} else {
		pl.units = p.mPad / p.kern.mr
		pl.shared = p.nPad*p.k <= maxShared
	}
	if !pl.splitN && p.direct {
		pl.shared = false // B is read in place
	} else if !pl.shared {
		perWorker = 2
	}
	pl.nchunks = min(pl.units, procs*perWorker, max(1, flops/minChunkFlops))
	pl.workers = min(procs, pl.nchunks)
	return pl
}

// run computes C = alpha*op(A)*op(B) + beta*C for the checked problem p
// (alpha != 0, k > 0) on up to procs goroutines.
func run(p *problem, procs int) {
	pl := makePlan(p, procs)
	if pl.workers > 1 && adaptive && 2*p.m*p.n*p.k < bigFlops && spinners.Load() == 0 {
		// Small product and no helper awake: waking one would cost more
		// than it can save.
		pl.workers = 1
	}
	if pl.workers > 1 && adaptive {
		if parallel, measure, st := chooseMode(shapeKey{p.m, p.n, p.k, p.aTrans, p.bTrans}); st != nil {
			start := time.Now()
			if parallel {
				runParallel(p, pl)
			} else {
				runSerial(p)
			}
			if measure {
				record(st, parallel, time.Since(start))
			}
			return
		}
	}
	if pl.workers > 1 {
		runParallel(p, pl)
	} else {
		runSerial(p)
	}
}

// runSerial computes p on the calling goroutine.
func runSerial(p *problem) {
	ws := wsPool.Get().(*workspace)
	p.compute(ws, 0, p.m, 0, p.n, nil, nil, nil)
	wsPool.Put(ws)
}

// runParallel computes p with the caller and pl.workers-1 helpers.
func runParallel(p *problem, pl plan) {
	t := taskPool.Get().(*task)
	t.p = *p
	t.splitN, t.units, t.nchunks = pl.splitN, pl.units, pl.nchunks
	t.next.Store(0)
	t.done.Store(0)
	t.ready.Store(false)
	t.shared = nil
	if pl.shared {
		size := p.mPad * p.k
		if !pl.splitN {
			size = p.nPad * p.k
		}
		t.sharedBuf = grow(t.sharedBuf, size)
		t.shared = t.sharedBuf
	}
	t.refs.Store(int32(pl.workers))
	for w := 1; w < pl.workers; w++ {
		if !dispatch(t) {
			t.refs.Add(-1) // all helpers busy: do without this one
		}
	}
	if t.shared != nil {
		t.packShared()
		t.ready.Store(true)
	}
	t.work()
	reclaim(t)
	// Wait for the chunks still in progress on helpers: spin briefly (a
	// blocked goroutine takes tens of µs to wake up), then block.
	if int(t.done.Load()) < t.nchunks {
		start := time.Now()
		for int(t.done.Load()) < t.nchunks && time.Since(start) < spinWait {
			runtime.Gosched()
		}
	}
	<-t.doneCh
	t.release()
}

// Adaptive choice between serial and parallel execution. Whether two
// goroutines beat one depends on more than the shape: when other processes
// keep the cores busy, the helper gets little CPU, competes with the caller
// for it, and may be preempted in the middle of a chunk that the caller
// then has to wait for, so a parallel call can take much longer than a
// serial one. Since a training loop issues the same shapes over and over,
// Sgemm keeps, per shape, a moving average of the wall time of serial and
// of parallel calls, runs the faster mode, and every probeEvery-th call
// re-measures the other one (so a wrong choice, after a burst of load say,
// is undone after a probe or two). A parallel measurement takes two calls
// and only the second is recorded, the first one having woken the helpers
// up. The probes cost about 2% on a quiet machine. This never changes the
// results, which are the same in both modes.
var (
	adaptive   = true // false in tests that must exercise the parallel path
	probeEvery = int64(32)
	statsMu    sync.Mutex
	stats      = map[shapeKey]*shapeStat{}
	// spinOK tells idle helpers whether to spin. It is cleared when a large
	// product (≥ bigFlops, for which a parallel run should clearly win)
	// runs faster serially, the sign of an overloaded machine, so that idle
	// helpers then block at once instead of competing with the caller for
	// the CPU; it is set again when a large product prefers parallel runs.
	spinOK   atomic.Bool
	bigFlops = 16_000_000
)

func init() { spinOK.Store(true) }

const maxStats = 256

type shapeKey struct {
	m, n, k        int
	aTrans, bTrans bool
}

type shapeStat struct {
	calls         int64
	serial, par   float64 // moving averages of the wall time, ns
	nSerial, nPar int64   // number of measurements
	probe         int     // parallel calls left in the current measurement
}

// chooseMode reports whether this call of shape key should run in parallel
// and whether its time should be recorded. A nil *shapeStat means that the
// shape is not tracked (run in parallel).
func chooseMode(key shapeKey) (parallel, measure bool, st *shapeStat) {
	big := 2*key.m*key.n*key.k >= bigFlops
	statsMu.Lock()
	defer statsMu.Unlock()
	st = stats[key]
	if st == nil {
		if len(stats) >= maxStats {
			return true, false, nil
		}
		st = &shapeStat{probe: 2}
		stats[key] = st
	}
	st.calls++
	if st.probe > 0 {
		st.probe--
		if big {
			spinOK.Store(true)
		}
		return true, st.probe == 0, st
	}
	if st.nSerial == 0 {
		return false, true, st
	}
	parBetter := st.par <= st.serial
	if big {
		spinOK.Store(parBetter)
	}
	if st.calls%probeEvery != 0 {
		return parBetter, true, st
	}
	if parBetter {
		return false, true, st // probe serial
	}
	st.probe = 1 // probe parallel: this call and the next, record the next
	if big {
		spinOK.Store(true)
	}
	return true, false, st
}

// record folds the wall time of a call into the statistics of its shape.
func record(st *shapeStat, parallel bool, d time.Duration) {
	ns := float64(d.Nanoseconds())
	statsMu.Lock()
	defer statsMu.Unlock()
	avg, cnt := &st.serial, &st.nSerial
	if parallel {
		avg, cnt = &st.par, &st.nPar
	}
	if *cnt == 0 {
		*avg = ns
	} else {
		*avg += 0.5 * (ns - *avg)
	}
	*cnt++
}
