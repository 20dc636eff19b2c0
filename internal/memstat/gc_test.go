package memstat

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestSetGCExcludingLeavesDataOutOfTheHeadroom holds 64 MiB of data and
// requires the heap goal to exceed the live heap by about the live heap
// other than the data: by default it exceeds it by all of the live heap,
// 64 MiB more.
func TestSetGCExcludingLeavesDataOutOfTheHeadroom(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: SetGCExcluding leaves it alone")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const data = 64 << 20
	d := make([]byte, data)
	runtime.GC()
	headroom := func() (goal, live uint64) {
		return readUint("/gc/heap/goal:bytes"), liveHeap()
	}
	goal0, live0 := headroom()
	p := SetGCExcluding(data)
	goal, live := headroom()
	runtime.KeepAlive(d)
	t.Logf("GOGC 100: live %d MiB, goal %d MiB; SetGCExcluding: %d%%, goal %d MiB", live0>>20, goal0>>20, p, goal>>20)
	if live < data || goal < live {
		t.Fatalf("live heap %d, goal %d with %d bytes of data", live, goal, data)
	}
	// The goal also counts goroutine stacks and globals; 8 MiB covers them.
	if rest := max(live-data, minHeadroom); goal-live > rest+8<<20 {
		t.Errorf("heap goal %d MiB over the live %d MiB, want at most the %d MiB of live heap other than the data (+8)", (goal-live)>>20, live>>20, rest>>20)
	}
	if p < 1 || p > 100 {
		t.Errorf("GC percent %d", p)
	}
}
