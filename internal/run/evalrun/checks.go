package evalrun

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/govae/govae/amortized"
)

// MaxK bounds -k. Memory does not grow with k (amortized processes
// samples in chunks), time does: a million samples per image is beyond any
// use and would take hours.
const MaxK = 1 << 20

// ErrInterrupted is returned when the context is cancelled (Ctrl-C):
// nothing is printed as a result, and no report is written.
var ErrInterrupted = errors.New("evaluation interrupted; no report written")

const (
	// llChunk is the number of importance samples (rows x k) per call of
	// LogLikelihoodSE: small enough that a signal is seen within a second.
	llChunk = 20000
	// encodeChunk is the number of rows per call of Encode.
	encodeChunk = 1000
)

// ctxBatches makes Evaluate stop at the next batch once ctx is cancelled.
type ctxBatches struct {
	ctx context.Context
	amortized.Batches
}

func (b ctxBatches) Batch(epoch, i int, dst []float32) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.Batches.Batch(epoch, i, dst)
}

// klTolerance allows the rounding of a closed-form KL that is 0 in exact
// arithmetic (float32 sums over the latent dimensions).
const klTolerance = 1e-4

// checkReport refuses numbers that are not finite, or impossible for the
// model, naming the quantity: a probability mass is at most 1, so under a
// Bernoulli likelihood log p(x), log p(x|z) and the ELBO are at most 0; a
// closed-form KL (diag, fullcov posteriors) is at least 0. Such values come
// from weights that overflow, which loading cannot see.
func checkReport(r *Report, ll []float64, c amortized.Config) error {
	for _, q := range []struct {
		name string
		v    float64
	}{{"the ELBO", r.ELBO}, {"the reconstruction term", r.Recon}, {"the KL term", r.KL},
		{"log p(x)", r.LogPx}, {"the standard error of log p(x)", r.LogPxStderr}, {"the delta-method standard error of log p(x)", r.LogPxStderrDelta}, {"the effective sample size", r.ESSMean}, {"the spread of log p(x) over images", r.LogPxSDOverImage}} {
		if math.IsNaN(q.v) || math.IsInf(q.v, 0) {
			return fmt.Errorf("%s is not finite (%g): the model overflows on these images; no report written", q.name, q.v)
		}
	}
	if c.Likelihood == amortized.Bernoulli || amortized.IsPixelLikelihood(c.Likelihood) {
		for i, l := range ll {
			if l > 0 {
				return fmt.Errorf("log p(x) of image %d is %g > 0, impossible under a %s likelihood (a probability is at most 1): the model overflows; no report written", i, l, c.Likelihood)
			}
		}
		for _, q := range []struct {
			name string
			v    float64
		}{{"the ELBO", r.ELBO}, {"the reconstruction term E_q[log p(x|z)]", r.Recon}} {
			if q.v > 0 {
				return fmt.Errorf("%s is %g > 0, impossible under a %s likelihood: the model overflows; no report written", q.name, q.v, c.Likelihood)
			}
		}
	}
	if (c.Posterior == "diag" || c.Posterior == "fullcov") && r.KL < -klTolerance {
		return fmt.Errorf("the KL term is %g < 0, impossible for the closed-form KL of a %s Gaussian posterior: the model overflows; no report written", r.KL, c.Posterior)
	}
	return nil
}
