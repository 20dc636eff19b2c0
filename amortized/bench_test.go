package amortized

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStepReference times one Adam step of the reference model
// (784-400-20-400-784, batch 128) and reports images per second: with the
// default shards (two), and with the batch in one graph.
func BenchmarkTrainStepReference(b *testing.B) {
	for _, bc := range []struct {
		name   string
		shards int
	}{{"default", 0}, {"shards=1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			benchSteps(b, ReferenceConfig(), TrainOptions{Epochs: 1, Shards: bc.shards})
		})
	}
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

// BenchmarkLogLikelihoodK1000 times the importance-sampled log p(x) with
// k = 1000 on 20 images (all cores) and reports test images per second, the
// unit of the peer's --iwae-k 1000 evaluation.
func BenchmarkLogLikelihoodK1000(b *testing.B) {
	m, err := New(ReferenceConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	x := rowsOf(synthetic(20, 784, 1), 784)
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.LogLikelihood(x, 1000, rand.New(rand.NewPCG(1, 1))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(20*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkTrainStepPosterior times one Adam step of the reference model
// (batch 128) with each posterior family.
func BenchmarkTrainStepPosterior(b *testing.B) {
	for _, post := range []string{"diag", "fullcov", "planar:4", "radial:4", "iaf:2", "iaf:2:400", "planar:10",
		"householder:4", "sylvester:4:10", "sylvester-householder:4:4", "sylvester-triangular:4", "mixture:5", "aux:20"} {
		b.Run(post, func(b *testing.B) {
			cfg := ReferenceConfig()
			cfg.Posterior = post
			benchSteps(b, cfg, TrainOptions{Epochs: 1})
		})
	}
}

// benchSteps times Adam steps of a model of configuration cfg on batches of
// 128 synthetic images and reports images per second.
func benchSteps(b *testing.B, cfg Config, opts TrainOptions) {
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(m, 128, opts, nil)
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
