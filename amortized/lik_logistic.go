package amortized

import (
	"fmt"

	"github.com/govae/govae/nets"
)

// Discretized logistic likelihoods of 8-bit pixels (Salimans et al. 2017;
// the IAF paper's models), see nets.PixelLogLik:
//
//	logistic         one discretized logistic per value (mean, log-scale)
//	logistic-mix:K   a mixture of K per value (logits, means, log-scales)
//	logistic-rgb:K   PixelCNN++'s mixture over a pixel's joint (r, g, b),
//	                 green and blue means linear in the earlier channels;
//	                 needs 3-channel images
const (
	Logistic    = "logistic"
	LogisticMix = "logistic-mix"
	LogisticRGB = "logistic-rgb"
)

// maxMixture bounds K (nets accepts 1..256).
const maxMixture = 256

func init() {
	RegisterLikelihood(Logistic, Logistic, func(args []string, c Config) (Likelihood, error) {
		return pixelLik{name: Logistic, kind: nets.PixelLogistic}, noArgs(Logistic, args)
	})
	RegisterLikelihood(LogisticMix, "logistic-mix:K", func(args []string, c Config) (Likelihood, error) {
		k, err := mixtureArg(LogisticMix, args)
		if err != nil {
			return nil, err
		}
		return pixelLik{name: fmt.Sprintf("%s:%d", LogisticMix, k), kind: nets.PixelLogisticMix, k: k}, nil
	})
	RegisterLikelihood(LogisticRGB, "logistic-rgb:K", func(args []string, c Config) (Likelihood, error) {
		k, err := mixtureArg(LogisticRGB, args)
		if err != nil {
			return nil, err
		}
		if ch := c.Shape().Channels; ch != 3 || c.ImageRows == 0 {
			return nil, fmt.Errorf("%s needs RGB images (3 channels), got %d channel(s)%s", LogisticRGB, ch, map[bool]string{true: " and no image shape"}[c.ImageRows == 0])
		}
		return pixelLik{name: fmt.Sprintf("%s:%d", LogisticRGB, k), kind: nets.PixelLogisticMixRGB, k: k}, nil
	})
}

func mixtureArg(name string, args []string) (int, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("%s takes one parameter, the number of components K (%s:K)", name, name)
	}
	return countArg("K", args[0], maxMixture)
}
