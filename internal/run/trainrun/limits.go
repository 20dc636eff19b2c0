package trainrun

import (
	"github.com/govae/govae/amortized"
)

// Limits on the sizes a user chooses, checked before anything is allocated
// for them (at flag parsing with the data dimension unknown, taken as 1,
// and again once the data are loaded). They are far above any useful
// setting and far below what would exhaust memory or run without end.
const (
	MaxWidth  = 1 << 16 // units of one hidden layer (-hidden, -decoder-hidden); latent dimensions (-latent)
	MaxBatch  = 1 << 16 // images per minibatch (-batch)
	MaxK      = 1 << 12 // samples of z per image in training (-k)
	MaxParams = 1 << 28 // parameters of the model: with gradients and both Adam moments, 4 GiB in float32
	// MaxStepBytes bounds the estimated activations of one training step:
	// k*batch rows, each with its input, every layer's output and the
	// gradients of both, in the model's dtype.
	MaxStepBytes = 8 << 30
)

// CheckSizes checks the sizes of a training job against the limits above;
// errors name the flags.
func CheckSizes(mc amortized.Config, batch, k int) error {
	for _, w := range mc.Hidden {
		if w > MaxWidth {
			return usagef("-hidden %s: %d units in a layer, want at most %d", joinInts(mc.Hidden), w, MaxWidth)
		}
	}
	for _, w := range mc.DecoderHidden {
		if w > MaxWidth {
			return usagef("-decoder-hidden %s: %d units in a layer, want at most %d", joinInts(mc.DecoderHidden), w, MaxWidth)
		}
	}
	switch {
	case mc.Latent > MaxWidth:
		return usagef("-latent %d: want at most %d", mc.Latent, MaxWidth)
	case batch > MaxBatch:
		return usagef("-batch %d: want at most %d", batch, MaxBatch)
	case k > MaxK:
		return usagef("-k %d: want at most %d samples per image", k, MaxK)
	}
	if mc.DataDim < 1 {
		mc.DataDim = 1 // a lower bound before the data are known
	}
	n, err := mc.NumParams()
	if err != nil {
		return usagef("-hidden %s -latent %d: %w", joinInts(mc.Hidden), mc.Latent, err)
	}
	if n > MaxParams {
		return usagef("-hidden %s -latent %d -posterior %s: the model would have %d parameters, over the limit of %d; make the layers or the latent space smaller",
			joinInts(mc.Hidden), mc.Latent, mc.Posterior, n, MaxParams)
	}
	bytes := int64(4)
	if mc.Dtype == "float64" {
		bytes = 8
	}
	widths := int64(2*mc.DataDim + 4*mc.Latent)
	dec := mc.DecoderHidden
	if dec == nil {
		dec = mc.Hidden
	}
	for _, w := range append(append([]int{}, mc.Hidden...), dec...) {
		widths += int64(w)
	}
	// Each factor is at most 2^16 (2^28 for widths), so this cannot overflow.
	if est := int64(k) * int64(batch) * widths * 2 * bytes; est > MaxStepBytes {
		return usagef("-k %d x -batch %d: one training step would hold about %.1f GiB of activations and gradients, over the limit of %d GiB; make -k or -batch smaller",
			k, batch, float64(est)/(1<<30), MaxStepBytes>>30)
	}
	return nil
}
