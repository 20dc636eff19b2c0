package cores

import "sync/atomic"

var holds atomic.Int32

// Hold marks the cores as busy with the caller's own goroutines until the
// returned function is called. Holds nest and may overlap.
func Hold() (release func()) {
	holds.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			holds.Add(-1)
		}
	}
}

// Spare reports whether no caller holds the cores, so a kernel may spread
// its work over them.
func Spare() bool { return holds.Load() == 0 }
