//go:build !amd64 || purego

package vi

const useAVX2 = false

func mixSumsAVX2(x *float64, assign *int, n int, a, b *float64, k int, acc, e, h *float64) {
	panic("unreachable")
}
