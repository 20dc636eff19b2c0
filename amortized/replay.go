package amortized

import (
	"errors"
	"fmt"
	"math"
)

// Replaying another trainer's randomness: with the noise of every step and
// of the evaluation given from outside, a run of ours and a run of another
// implementation (the PyTorch peer) can share every random draw, so that
// their difference is the implementations' and not the draws'
// (experiments/convpaired).

// NoiseFunc writes the reparameterization noise of training step step
// (0-based, over the whole run) into eps: rows·K·NoiseWidth() standard
// normal draws, row after row (the K draws of a row together).
type NoiseFunc func(step int64, rows int, eps []float64) error

// NoiseWidth is the number of standard normal draws one sample of z takes
// (the latent dimension for the diagonal Gaussian posterior).
func (m *Model) NoiseWidth() int { return m.noiseWidth() }

// SetNoise makes every later Step take its noise from fill instead of the
// run's seeded streams; nil restores them. A Bayesian decoder also draws
// its weights from the step's stream, which fill cannot give, so it is
// refused.
func (t *Trainer) SetNoise(fill NoiseFunc) error {
	if fill != nil && t.weights != nil {
		return errors.New("amortized: a Bayesian decoder draws its weights from the step's seeded stream: replayed noise cannot replace it")
	}
	t.noise = fill
	return nil
}

// replayNoise fills t.eps for a step on rows rows from t.noise, zeroing
// the rows the batch does not have.
func (t *Trainer) replayNoise(rows int) error {
	if rows < 1 || rows > t.batch {
		return fmt.Errorf("amortized: step on %d rows, want 1..%d", rows, t.batch)
	}
	n := rows * t.opts.K * t.m.noiseWidth()
	clear(t.eps[n:])
	if err := t.noise(t.state.Step, rows, t.eps[:n]); err != nil {
		return fmt.Errorf("amortized: noise of step %d: %w", t.state.Step+1, err)
	}
	for i, v := range t.eps[:n] {
		if nonFinite(v) {
			return fmt.Errorf("amortized: noise of step %d: value %d is %g", t.state.Step+1, i, v)
		}
	}
	return nil
}

// ELBOWithNoise is ELBO with the reparameterization noise given: eps holds
// len(x)·NoiseWidth() standard normal draws, row after row.
func (m *Model) ELBOWithNoise(x [][]float32, eps []float64) ([]float64, error) {
	flat, err := m.checkData(x)
	if err != nil {
		return nil, err
	}
	if w := m.noiseWidth(); len(eps) != len(x)*w {
		return nil, fmt.Errorf("amortized: %d noise values for %d rows of %d, want %d", len(eps), len(x), w, len(x)*w)
	}
	for i, v := range eps {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("amortized: noise value %d is %g", i, v)
		}
	}
	out := make([]float64, len(x))
	err = m.evalFlatEps(kindEval, flat, len(x), eps, func(g *graph, start, rows int) {
		rec, kl := g.read(outRecon, nil), g.read(outKL, nil)
		for r := 0; r < rows; r++ {
			out[start+r] = rec[r] - kl[r]
		}
	})
	return out, err
}
