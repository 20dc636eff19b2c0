package amortized

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// GradientStats summarizes one estimator's gradient of the loss over
// repeated noise draws on a fixed model and batch, for one parameter group.
type GradientStats struct {
	Group  string `json:"group"`  // "encoder" or "decoder"
	Params int    `json:"params"` // scalars in the group
	// Variance is the trace of the gradient's covariance: the sum over the
	// group's coordinates of their variance across draws.
	Variance float64 `json:"variance"`
	// MeanNorm2 is the squared norm of the mean gradient; with Variance it
	// gives a signal-to-noise ratio.
	MeanNorm2 float64 `json:"mean_norm2"`
	// Mean is the mean gradient, coordinates in parameter order.
	Mean []float64 `json:"-"`
}

// GradientVariance draws the gradient of the training loss draws times on
// the batch x with opts' objective and estimator (KL weight 1), without
// updating m, and returns the statistics per parameter group. This is the
// measurement behind the classic comparison of pathwise and score-function
// estimators (Kucukelbir et al. 2017).
//
// For the score estimator the baseline is the mean of log p(x|z) over draws
// separate pilot draws: a good constant baseline that does not depend on the
// measured draws, so the estimator stays unbiased.
func GradientVariance(m *Model, x [][]float32, opts TrainOptions, draws int, seed uint64) ([]GradientStats, error) {
	if draws < 2 {
		return nil, fmt.Errorf("amortized: GradientVariance: %d draws, want >= 2", draws)
	}
	flat, err := m.checkData(x)
	if err != nil {
		return nil, err
	}
	opts.Epochs = max(opts.Epochs, 1)
	t, err := NewTrainer(m, len(x), opts, nil)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if t.opts.Estimator == EstimatorScore {
		var sum float64
		for d := range draws {
			s, err := t.gradients(flat, len(x), 1, rand.New(rand.NewPCG(seed, uint64(draws+d))))
			if err != nil {
				return nil, err
			}
			sum += s.Recon
		}
		b := sum / float64(draws)
		t.fixedBaseline = &b
	}
	total := m.params.Count()
	mean, m2 := make([]float64, total), make([]float64, total)
	var buf []float64
	for d := range draws {
		_, err := t.gradients(flat, len(x), 1, rand.New(rand.NewPCG(seed, uint64(d))))
		if err != nil {
			return nil, err
		}
		// Welford's update, coordinate by coordinate.
		off, n := 0, float64(d+1)
		for _, g := range t.batchGrads() {
			buf = tensorValues(g, buf)
			for i, v := range buf {
				delta := v - mean[off+i]
				mean[off+i] += delta / n
				m2[off+i] += delta * (v - mean[off+i])
			}
			off += len(buf)
		}
	}
	var out []GradientStats
	off := 0
	for _, p := range m.params.All() {
		group, _, _ := strings.Cut(p.Name, ".")
		if len(out) == 0 || out[len(out)-1].Group != group {
			out = append(out, GradientStats{Group: group})
		}
		st := &out[len(out)-1]
		for i := off; i < off+p.Len(); i++ {
			st.Variance += m2[i] / float64(draws-1)
			st.MeanNorm2 += mean[i] * mean[i]
		}
		st.Params += p.Len()
		st.Mean = append(st.Mean, mean[off:off+p.Len()]...)
		off += p.Len()
	}
	return out, nil
}
