package amortized

import "github.com/govae/govae/nets"

// Categorical is "categorical": a 256-way softmax over the levels of every
// 8-bit value (van den Oord et al. 2016's PixelRNN output), 256 logits per
// value. See nets.PixelLogLik.
const Categorical = "categorical"

func init() {
	RegisterLikelihood(Categorical, Categorical, func(args []string, c Config) (Likelihood, error) {
		return pixelLik{name: Categorical, kind: nets.PixelCategorical}, noArgs(Categorical, args)
	})
}
