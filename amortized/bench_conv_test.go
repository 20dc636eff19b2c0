package amortized

import (
	"math"
	"testing"
)

// BenchmarkTrainStepConvPeer times one Adam step of the PyTorch peer's conv
// VAE through the whole model (-arch convpeer: 28x28, z = 32, Bernoulli,
// batch 128), with the default shards and with the batch in one graph, and
// a logistic-likelihood variant on the same trunk (grey levels).
func BenchmarkTrainStepConvPeer(b *testing.B) {
	peer := Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Latent: 32, Trunk: ConvPeerTrunk}
	for _, bc := range []struct {
		name   string
		lik    string
		shards int
	}{{"default", "", 0}, {"shards=1", "", 1}, {"logistic", Logistic, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := peer
			cfg.Likelihood = bc.lik
			if bc.lik != "" {
				benchStepsData(b, cfg, TrainOptions{Epochs: 1, Shards: bc.shards}, greyLevels(128, 784))
				return
			}
			benchSteps(b, cfg, TrainOptions{Epochs: 1, Shards: bc.shards})
		})
	}
}

// greyLevels are n rows of d 8-bit levels v/255 (a smooth pattern).
func greyLevels(n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(math.Round(127.5+127.5*math.Sin(float64(i%d)*0.1+float64(i/d)))) / 255
	}
	return x
}

func benchStepsData(b *testing.B, cfg Config, opts TrainOptions, x []float32) {
	m, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(m, 128, opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(x, 128, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "images/s")
}
