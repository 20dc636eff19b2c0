package amortized

import "testing"

// BenchmarkTrainStepBayes times one Adam step of the reference model (batch
// 128) with the point-estimate decoder and with a Bayesian one (weight
// draw, gradient transform and KL over the decoder's 322k parameters, plus
// twice the decoder's Adam work); compare the two side by side.
func BenchmarkTrainStepBayes(b *testing.B) {
	for _, sigma := range []float64{0, 1} {
		name := "plain"
		if sigma > 0 {
			name = "bayes"
		}
		b.Run(name, func(b *testing.B) {
			cfg := ReferenceConfig()
			cfg.DecoderPriorSigma = sigma
			benchStepsN(b, cfg, TrainOptions{Epochs: 1}, 60000)
		})
	}
}
