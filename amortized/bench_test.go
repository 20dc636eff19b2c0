package amortized

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStepReference times one Adam step of the reference model
// (784-400-20-400-784, batch 128) and reports images per second.
func BenchmarkTrainStepReference(b *testing.B) {
	m, err := New(ReferenceConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(m, 128, TrainOptions{Epochs: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	x := synthetic(128, 784, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(x, 128, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkELBOReference times the per-image ELBO of 1000 images.
func BenchmarkELBOReference(b *testing.B) {
	m, err := New(ReferenceConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	x := rowsOf(synthetic(1000, 784, 1), 784)
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.ELBO(x, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "images/s")
}
