package amortized

import (
	"testing"
	"time"

	"github.com/govae/govae/internal/kernels/gemm"
)

// BenchmarkFlushSubnormals trains the reference model with ELBO and with
// IWAE (k = 50), each twice from the same start, alternating step by step
// between the copy whose matrix products flush subnormal numbers to zero
// (gemm.SetFlushSubnormals, the default) and the copy whose products do
// not, and reports the flushing copy's images/s and x_noflush, its speed
// as a multiple of the other's, measured side by side. IWAE's gradients
// reach subnormal numbers after a few steps (importance weights below
// 2^-126), which the CPU handles in microcode.
func BenchmarkFlushSubnormals(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts TrainOptions
	}{{"elbo", TrainOptions{Epochs: 1}}, {"iwae50", TrainOptions{Epochs: 1, Objective: ObjectiveIWAE, K: 50}}} {
		b.Run(bc.name, func(b *testing.B) {
			var tr [2]*Trainer
			for i := range tr {
				m, err := New(ReferenceConfig(), 1)
				if err != nil {
					b.Fatal(err)
				}
				if tr[i], err = NewTrainer(m, 128, bc.opts, nil); err != nil {
					b.Fatal(err)
				}
				defer tr[i].Close()
				if err := tr[i].SetDataSize(60000); err != nil {
					b.Fatal(err)
				}
			}
			defer gemm.SetFlushSubnormals(gemm.SetFlushSubnormals(true))
			x := synthetic(128, 784, 1)
			var spent [2]time.Duration
			for b.Loop() {
				for i := range tr {
					gemm.SetFlushSubnormals(i == 0)
					t0 := time.Now()
					if _, err := tr[i].Step(x, 128, 1); err != nil {
						b.Fatal(err)
					}
					spent[i] += time.Since(t0)
				}
			}
			b.ReportMetric(float64(128*b.N)/spent[0].Seconds(), "images/s")
			b.ReportMetric(spent[1].Seconds()/spent[0].Seconds(), "x_noflush")
		})
	}
}
