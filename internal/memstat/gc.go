package memstat

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// minHeadroom is the least room SetGCExcluding leaves for garbage: Go's own
// smallest heap goal, so that a heap of little but data is not collected
// every few allocations.
const minHeadroom = 4 << 20

// SetGCExcluding sets the collector's percentage so that the heap grows
// past its live size by 100% of the live heap other than data, the bytes of
// long-lived data such as a loaded dataset, instead of 100% of all of it.
// By default a collection starts when the heap reaches twice its live size,
// so a dataset of D bytes raises the peak memory by 2D; after this call, by
// D. It runs a collection to measure the live heap (some 20 ms for 100 MB,
// mostly data), so call it now and then, when the rest of the heap may have
// grown (the trainer: once an epoch), not in a loop. It leaves the setting
// alone when GOGC is set in the environment, and returns the percentage in
// force.
func SetGCExcluding(data uint64) int {
	if os.Getenv("GOGC") != "" {
		return currentGCPercent()
	}
	runtime.GC()
	live := liveHeap()
	if live == 0 {
		return currentGCPercent()
	}
	rest := uint64(minHeadroom)
	if live > data+rest {
		rest = live - data
	}
	p := int(min(100, max(1, 100*rest/live)))
	debug.SetGCPercent(p)
	return p
}

func liveHeap() uint64 { return readUint("/gc/heap/live:bytes") }

func currentGCPercent() int { return int(readUint("/gc/gogc:percent")) }

// readUint reads one runtime metric (0 if this Go does not have it).
func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
