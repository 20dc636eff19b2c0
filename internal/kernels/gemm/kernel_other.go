//go:build !amd64 || purego

package gemm

// availableKernels returns the kernels usable on this platform: only the
// pure-Go one.
func availableKernels() []*kernel {
	return []*kernel{genericKernel}
}

func transPack8(dst, src *float32, ld, dstStride, nblk int) { panic("unreachable") }
func transPack4(dst, src *float32, ld, dstStride, nblk int) { panic("unreachable") }
func copyPack(dst, src *float32, ld, w, kb int)             { panic("unreachable") }

// flushSubnormals has no effect here: the Go kernel never flushes.
var flushSubnormals = true

func flushOn() (uint32, bool) { return 0, false }

func flushOff(uint32, bool) {}
