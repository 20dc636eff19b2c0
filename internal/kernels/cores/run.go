package cores

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Run calls f(0), ..., f(n-1) concurrently and returns when all have
// returned: f(0) on the calling goroutine, the others on helper goroutines.
//
// Waking a parked goroutine costs 50-100 µs on the 2-vCPU VM these numbers
// come from (a futex wake and an interrupt to a halted vCPU), as much as a
// shard's element-wise work, and a training step needs several rounds of
// parallel work in quick succession. So a helper that finishes keeps
// polling for new work for spinFor before it parks, and the caller, after
// f(0), runs itself any task no helper has picked up, so it never waits for
// a helper that has not started.
func Run(n int, f func(i int)) {
	if n <= 0 {
		return
	}
	if n == 1 {
		f(0)
		return
	}
	b := batchPool.Get().(*batch)
	b.f = f
	b.left.Store(int32(n - 1))
	b.wg.Add(n - 1)
	if cap(b.tasks) < n-1 {
		b.tasks = make([]task, n-1)
	}
	ts := b.tasks[:n-1]
	for i := range ts {
		ts[i] = task{b: b, i: i + 1}
		dispatch(&ts[i])
	}
	f(0)
	for i := range ts {
		if reclaim(&ts[i]) {
			ts[i].run()
		}
	}
	start := time.Now()
	for b.left.Load() > 0 && time.Since(start) < spinFor {
		runtime.Gosched()
	}
	b.wg.Wait()
	b.f = nil
	batchPool.Put(b) // not deferred: after a panic, helpers may still hold b
}

// spinFor is how long an idle helper, or a caller waiting for helpers,
// polls before blocking.
const spinFor = 500 * time.Microsecond

// batch is one call of Run; batches are pooled, so that Run does not
// allocate. A helper touches a task last in wg.Done, before Wait returns.
type batch struct {
	f     func(int)
	left  atomic.Int32 // tasks not yet finished
	wg    sync.WaitGroup
	tasks []task
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

type task struct {
	b *batch
	i int
}

func (t *task) run() {
	t.b.f(t.i)
	t.b.left.Add(-1)
	t.b.wg.Done()
}

var (
	parked   = make(chan *task) // a send succeeds at once only if a helper is parked
	spinners atomic.Int32       // helpers polling slots
	slots    [16]atomic.Pointer[task]
)

// dispatch hands t to a spinning helper through a slot if one may be
// polling, else to a parked helper, else to a new one. A helper that stops
// polling first leaves the spinner count and then scans the slots once
// more, and dispatch checks the count after filling a slot: one of the two
// sees the other, so a task is never left in a slot nobody polls (the
// caller's reclaim is only a shortcut).
func dispatch(t *task) {
	if spinners.Load() > 0 {
		for i := range slots {
			if slots[i].CompareAndSwap(nil, t) {
				if spinners.Load() > 0 || !slots[i].CompareAndSwap(t, nil) {
					return // a helper will see it, or has taken it
				}
				break
			}
		}
	}
	select {
	case parked <- t:
	default:
		go helper(t)
	}
}

// reclaim takes t back from its slot if no helper has taken it.
func reclaim(t *task) bool {
	for i := range slots {
		if slots[i].Load() == t && slots[i].CompareAndSwap(t, nil) {
			return true
		}
	}
	return false
}

func helper(t *task) {
	for {
		for t != nil {
			t.run()
			t = poll()
		}
		t = <-parked
	}
}

// poll looks for a task in the slots for up to spinFor.
func poll() *task {
	spinners.Add(1)
	start := time.Now()
	for n := 0; ; n++ {
		if t := take(); t != nil {
			spinners.Add(-1)
			return t
		}
		if n&15 == 15 && time.Since(start) > spinFor {
			spinners.Add(-1)
			return take() // see dispatch
		}
		runtime.Gosched()
	}
}

func take() *task {
	for i := range slots {
		if slots[i].Load() != nil {
			if t := slots[i].Swap(nil); t != nil {
				return t
			}
		}
	}
	return nil
}
