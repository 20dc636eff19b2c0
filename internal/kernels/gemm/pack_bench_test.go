package gemm

import (
	"fmt"
	"testing"
)

func BenchmarkPack(b *testing.B) {
	for _, c := range []struct {
		name         string
		trans        bool
		rows, ld, kb int
		w            int
	}{
		{"transA_128x784_w12", true, 128, 784, 196, 12},
		{"transB_784x400_w32", true, 784, 400, 200, 32},
		{"copyA_128_w12", false, 128, 784, 196, 12},
		{"copyB_400_w32", false, 400, 400, 196, 32},
		{"transB_small_w32", true, 64, 200, 200, 32},
		{"transA_small_w12", true, 48, 200, 200, 12},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := make([]float32, c.rows*c.ld+c.ld*c.kb)
			for i := range src {
				src[i] = float32(i)
			}
			dst := make([]float32, (c.rows+c.w)*c.kb)
			for b.Loop() {
				if c.trans {
					packTrans(dst, src, 0, c.ld, c.kb, c.rows, c.w, true)
				} else {
					packCopy(dst, src, 0, c.ld, c.kb, c.rows, c.w, true)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.rows*c.kb), "ns/elem")
			_ = fmt.Sprint()
		})
	}
}
