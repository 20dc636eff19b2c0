//go:build amd64 && !purego

package vi

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// mixSumsAVX2 is the sweep of mixSums over the first n points (n a multiple
// of 4), one point per lane; see mixsums_amd64.s for acc, e and h.
//
//go:noescape
func mixSumsAVX2(x *float64, assign *int, n int, a, b *float64, k int, acc, e, h *float64)
