package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Parallelism. A problem whose flop count reaches parThreshold is cut into
// chunks along n (or along m when m > n) at micro-tile granularity, and the
// chunks are claimed dynamically by the calling goroutine and up to
// GOMAXPROCS-1 helper goroutines. The operand that is not split (A when
// splitting n) is needed by every chunk: it is first packed once, all of it,
// into a shared buffer by all the workers together (one panel at a time),
// and after that barrier each chunk only packs its own part of the other
// operand. k is never split and the k blocking only depends on k, so every
// element of C is summed in the same order whatever the number of
// goroutines: results are bit-identical.
var (
	// parThreshold is the minimum 2·m·n·k for going parallel. Below it the
	// hand-off to a helper (waking it takes several µs) costs more than it
	// saves.
	parThreshold = 3_000_000
	// chunksPerWorker > 1 lets a worker that got less CPU (other processes
	// on the machine) hand its share to the others.
	chunksPerWorker = 3
	// minChunkFlops keeps chunks from becoming tiny.
	minChunkFlops = 1_000_000
	// maxShared bounds the shared packed operand (floats); beyond it every
	// chunk packs its own blocks of both operands.
	maxShared = 1 << 22
)

type task struct {
	p       problem
	splitN  bool // split along n (else along m)
	units   int  // number of micro-tiles along the split dimension
	nchunks int
	next    atomic.Int64

	// Shared packed operand (A if splitN, else B); nil when not shared.
	shared    []float32
	sharedBuf []float32 // keeps the allocation across uses of the task
	panels    int       // micro-panels to pack into shared
	packNext  atomic.Int64
	packDone  atomic.Int64

	wg sync.WaitGroup
}

var taskPool = sync.Pool{New: func() any { return new(task) }}

// packShared packs micro-panel q (all k blocks) of the shared operand.
func (t *task) packShared(q int) {
	p := &t.p
	for pc := 0; pc < p.k; pc += p.kc {
		kb := min(p.kc, p.k-pc)
		if t.splitN {
			i := q * p.kern.mr
			p.packA(t.shared[pc*p.mPad+i*kb:], i, min(p.kern.mr, p.m-i), pc, kb)
		} else {
			j := q * p.kern.nr
			p.packB(t.shared[pc*p.nPad+j*kb:], j, min(p.kern.nr, p.n-j), pc, kb)
		}
	}
}

// work takes part in packing the shared operand, waits until it is
// complete, then claims and computes chunks until none is left.
func (t *task) work() {
	ws := wsPool.Get().(*workspace)
	if t.shared != nil {
		for {
			q := int(t.packNext.Add(1) - 1)
			if q >= t.panels {
				break
			}
			t.packShared(q)
			t.packDone.Add(1)
		}
		for t.packDone.Load() < int64(t.panels) {
			runtime.Gosched()
		}
	}
	var sharedA, sharedB []float32
	if t.splitN {
		sharedA = t.shared
	} else {
		sharedB = t.shared
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
			p.compute(ws, 0, p.m, u0*p.kern.nr, min(u1*p.kern.nr, p.n), sharedA, nil)
		} else {
			p.compute(ws, u0*p.kern.mr, min(u1*p.kern.mr, p.m), 0, p.n, nil, sharedB)
		}
	}
	wsPool.Put(ws)
}

// Helper goroutines are started on demand and then wait on helperCh forever;
// a send succeeds immediately only if a helper is idle.
var (
	helperCh    = make(chan *task)
	helperCount atomic.Int64
)

const maxHelpers = 256

func helper() {
	for t := range helperCh {
		t.work()
		t.wg.Done()
	}
}

// run computes C = alpha*op(A)*op(B) + beta*C (arguments already checked,
// alpha != 0, k > 0) on up to procs goroutines.
func run(kern *kernel, aTrans, bTrans bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, procs int) {
	flops := 2 * m * n * k
	workers := 1
	// Splitting n duplicates nothing but the packing of A (m·k), splitting m
	// that of B (k·n): split the larger dimension.
	splitN := n >= m
	var units, nchunks int
	if procs > 1 && flops >= parThreshold {
		if splitN {
			units = (n + kern.nr - 1) / kern.nr
		} else {
			units = (m + kern.mr - 1) / kern.mr
		}
		nchunks = min(units, procs*chunksPerWorker, max(1, flops/minChunkFlops))
		workers = min(procs, nchunks)
	}
	if workers <= 1 {
		var p problem
		p.init(kern, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		ws := wsPool.Get().(*workspace)
		p.compute(ws, 0, m, 0, n, nil, nil)
		wsPool.Put(ws)
		return
	}

	t := taskPool.Get().(*task)
	buf := t.sharedBuf
	*t = task{splitN: splitN, units: units, nchunks: nchunks}
	t.p.init(kern, aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	size := t.p.mPad * k
	t.panels = t.p.mPad / kern.mr
	if !splitN {
		size = t.p.nPad * k
		t.panels = t.p.nPad / kern.nr
	}
	if size <= maxShared {
		buf = grow(buf, size)
		t.shared = buf
	}
	t.sharedBuf = buf

	t.wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		select {
		case helperCh <- t:
		default:
			if helperCount.Load() < maxHelpers {
				helperCount.Add(1)
				go helper()
				helperCh <- t
			} else {
				t.wg.Done() // all helpers busy: do without this one
			}
		}
	}
	t.work()
	t.wg.Wait()
	t.p.a, t.p.b, t.p.c, t.shared = nil, nil, nil, nil
	taskPool.Put(t)
}
