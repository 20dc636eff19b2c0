//go:build amd64 && !purego

package gemm

import "runtime"

// mxcsrFlushOn sets the MXCSR's FTZ and DAZ bits and returns its old value
// (kernel_amd64.s).
//
//go:noescape
func mxcsrFlushOn() (old uint32)

// mxcsrSet loads v into the MXCSR.
func mxcsrSet(v uint32)

// flushOn makes the calling goroutine's thread flush subnormals (when
// flushSubnormals is set) for a block of micro-kernel calls; flushOff
// undoes it. The MXCSR belongs to the OS thread, so the goroutine is locked
// to it in between: no other goroutine runs on the thread with the bits
// set, and this one cannot move to a thread without them.
func flushOn() (old uint32, on bool) {
	if !flushSubnormals {
		return 0, false
	}
	runtime.LockOSThread()
	return mxcsrFlushOn(), true
}

func flushOff(old uint32, on bool) {
	if on {
		mxcsrSet(old)
		runtime.UnlockOSThread()
	}
}
