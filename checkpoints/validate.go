package checkpoints

import (
	"fmt"
	"math"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/nets"
)

// Beyond the format, loading checks the values: a file with a valid
// checksum can still hold a diverged model or a hand-edited training state,
// and nothing good comes of using either.

// checkWeights refuses parameters holding a NaN or an infinity, naming the
// first such tensor.
func checkWeights(ps *nets.Params) error {
	if name := ps.NonFinite(); name != "" {
		return fmt.Errorf("tensor %q holds a NaN or an infinity: the model diverged before it was saved, or the file was altered", name)
	}
	return nil
}

// checkState refuses a training state that no run of the trainer can have
// written: what it cannot check without the data (the batch count of an
// epoch, the batch size against the training set) the trainer checks on
// resume.
func checkState(st *amortized.TrainState) error {
	o, err := st.Options.Normalize()
	if err != nil {
		return fmt.Errorf("training state options: %w", err)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	p := st.Partial
	switch {
	case st.Epoch < 0 || st.Batch < 0 || st.Step < 0:
		return fmt.Errorf("training state has negative counters (epoch %d, batch %d, step %d), want >= 0", st.Epoch, st.Batch, st.Step)
	case st.Epoch > o.Epochs:
		return fmt.Errorf("training state: %d epochs completed of a run of %d, want at most %d", st.Epoch, o.Epochs, o.Epochs)
	case st.Epoch == o.Epochs && st.Batch > 0:
		return fmt.Errorf("training state: batch %d of epoch %d, beyond the run's %d epochs", st.Batch, st.Epoch+1, o.Epochs)
	case st.Step < int64(st.Epoch)+int64(st.Batch):
		// Every epoch has at least one step.
		return fmt.Errorf("training state: step %d is fewer than the %d epochs and %d batches completed", st.Step, st.Epoch, st.Batch)
	case st.BestEpoch < 0 || st.BestEpoch > st.Epoch:
		return fmt.Errorf("training state: best epoch %d, want 0 to the %d epochs completed", st.BestEpoch, st.Epoch)
	case st.BestEpoch > 0 && !finite(st.BestValELBO):
		return fmt.Errorf("training state: best validation ELBO %g, want a finite number", st.BestValELBO)
	case !finite(st.Baseline) || st.BaselineUpdates < 0:
		return fmt.Errorf("training state: score baseline %g after %d updates, want a finite number and a count >= 0", st.Baseline, st.BaselineUpdates)
	case !finite(p.Recon) || !finite(p.KL) || !finite(p.Bound) || !finite(p.Seconds) || p.N < 0 || p.Seconds < 0:
		return fmt.Errorf("training state: partial sums of the epoch in progress (recon %g, KL %g, bound %g, n %d, seconds %g) want finite values and counts >= 0", p.Recon, p.KL, p.Bound, p.N, p.Seconds)
	case st.Batch == 0 && p.N != 0:
		return fmt.Errorf("training state: %d images summed in an epoch with no batch done", p.N)
	}
	if name := st.AdamM.NonFinite(); name != "" {
		return fmt.Errorf("Adam first moment %q holds a NaN or an infinity", prefixAdamM+name)
	}
	for _, q := range st.AdamV.All() {
		if i, v := firstNegativeOrNonFinite(q); i >= 0 {
			return fmt.Errorf("Adam second moment %q holds %g at index %d; second moments are finite and >= 0", prefixAdamV+q.Name, v, i)
		}
	}
	return nil
}

func firstNegativeOrNonFinite(p *nets.Param) (int, float64) {
	if v := p.Float32s(); v != nil {
		for i, x := range v {
			if !(x >= 0) || math.IsInf(float64(x), 1) {
				return i, float64(x)
			}
		}
		return -1, 0
	}
	for i, x := range p.Float64s() {
		if !(x >= 0) || math.IsInf(x, 1) {
			return i, x
		}
	}
	return -1, 0
}
