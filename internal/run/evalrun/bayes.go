package evalrun

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
)

// DefaultWeightDraws is the number of draws of a Bayesian decoder's weights
// an evaluation averages over unless told otherwise.
const DefaultWeightDraws = 10

// MaxWeightDraws bounds -weight-draws (each draw is a full evaluation).
const MaxWeightDraws = 10000

// weightDraws is the number of weight draws to evaluate m with: 0 for a
// decoder that is not Bayesian (which has nothing to draw).
func weightDraws(m *amortized.Model, given int) (int, error) {
	switch {
	case given < 0 || given > MaxWeightDraws:
		return 0, usagef("-weight-draws %d: want 1 to %d (0: %d for a Bayesian decoder)", given, MaxWeightDraws, DefaultWeightDraws)
	case !m.BayesDecoder() && given > 1:
		return 0, usagef("-weight-draws %d: the model's decoder is not Bayesian (trained without -bayes-decoder); its weights are fixed", given)
	case !m.BayesDecoder():
		return 0, nil
	case given == 0:
		return DefaultWeightDraws, nil
	}
	return given, nil
}

// evalDraws evaluates a Bayesian decoder by Monte Carlo over its weights:
// for each of draws weights theta_s ~ q(theta), the ELBO terms (one z per
// image) and the k-sample importance estimate of p(x|theta_s); the ELBO
// terms are averaged over draws, and log p(x) of each image is the log of
// the mean over draws of p(x|theta_s) (amortized.LogMeanExpSE), with the
// standard error from the spread of the draws (which contains the z
// sampling's). It fills r's ELBO, KL and log p(x) timing fields and returns
// the per-image log p(x) and standard errors.
func evalDraws(ctx context.Context, m *amortized.Model, loader *data.Loader, x rowSource, cfg Config, draws int, r *Report, out io.Writer) (ll, se []float64, err error) {
	wd, err := m.NewWeightDraws(rand.New(rand.NewPCG(cfg.Seed, 3)).Uint64())
	if err != nil {
		return nil, nil, err
	}
	rngE, rngL := rand.New(rand.NewPCG(cfg.Seed, 1)), rand.New(rand.NewPCG(cfg.Seed, 2))
	per := make([][]float64, x.len) // log phat(x|theta_s), one per draw
	var llSec float64
	for s := range draws {
		if ctx.Err() != nil {
			return nil, nil, ErrInterrupted
		}
		d := wd.Next()
		st, err := d.Evaluate(ctxBatches{ctx, loader}, rngE)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ErrInterrupted
			}
			return nil, nil, err
		}
		r.ELBO += st.ELBO / float64(draws)
		r.Recon += st.Recon / float64(draws)
		r.KL += st.KL / float64(draws)
		fmt.Fprintf(out, "weight draw %d of %d: ELBO %.3f\n", s+1, draws, st.ELBO)
		start := time.Now()
		e, err := logLikelihood(ctx, d, x, cfg.K, 1, rngL, out)
		if err != nil {
			return nil, nil, err
		}
		l, lse := e.LogPx, e.DeltaSE
		llSec += time.Since(start).Seconds()
		for i, v := range l {
			per[i] = append(per[i], v)
		}
		if draws == 1 {
			se = lse // the importance sampling's error alone: one draw has no spread
		}
	}
	ll = make([]float64, x.len)
	if draws > 1 {
		se = make([]float64, x.len)
	}
	for i, v := range per {
		if draws > 1 {
			ll[i], se[i] = amortized.LogMeanExpSE(v)
		} else {
			ll[i] = v[0]
		}
	}
	kl := m.GlobalKL()
	r.GlobalKL, r.WeightDraws, r.LogPxSeconds = &kl, draws, llSec
	r.Integration = "ELBO and its terms: means over the weight draws (one z per image and draw); log p(x): log of the mean over the draws of each draw's k-sample importance estimate of p(x|theta)"
	return ll, se, nil
}
