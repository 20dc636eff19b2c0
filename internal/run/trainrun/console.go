package trainrun

import (
	"fmt"
	"io"

	"github.com/govae/govae/amortized"
)

// The console speaks one vocabulary: the ELBO and the IWAE bound, in nats
// per image, higher is better (units are stated once, by printUnits). The
// progress bar shows running means over the epoch so far, which at the
// epoch's end are the "train" numbers of the epoch summary.

// printUnits states the units once, at the start, and explains a positive
// ELBO for likelihoods of continuous values.
func printUnits(out io.Writer, mc amortized.Config, o amortized.TrainOptions) {
	fmt.Fprintln(out, "units: ELBO and bounds are in nats per image, higher is better (they bound log p(x) from below)")
	if mc.Preprocess() == amortized.PreprocessGrey {
		fmt.Fprintf(out, "note: the %s likelihood is a density of continuous pixel values; densities can exceed 1, so its ELBO can be above 0\n", mc.Likelihood)
	}
	if o.WarmupEpochs > 0 {
		fmt.Fprintf(out, "note: KL warm-up: the optimized objective is recon - beta KL, beta rising from 0 to 1 over %g epochs; the ELBO shown is always recon - KL\n", o.WarmupEpochs)
	}
	if o.FreeBits > 0 {
		fmt.Fprintf(out, "note: free bits: the optimized objective floors each dimension's KL at %g nats; the ELBO shown does not\n", o.FreeBits)
	}
}

// objectiveName is what training maximizes, for the start line.
func objectiveName(o amortized.TrainOptions) string {
	if o.Objective == amortized.ObjectiveIWAE {
		return fmt.Sprintf("IWAE bound, k = %d", max(o.K, 1))
	}
	if k := max(o.K, 1); k > 1 {
		return fmt.Sprintf("ELBO averaged over k = %d samples", k)
	}
	return "ELBO"
}

// runningMean accumulates an epoch's step statistics, weighted by rows.
type runningMean struct {
	epoch             int
	rows              float64
	elbo, bound, beta float64
}

func (r *runningMean) add(s amortized.StepStats) {
	if s.Epoch != r.epoch {
		*r = runningMean{epoch: s.Epoch}
	}
	n := float64(s.Rows)
	r.rows += n
	r.elbo += (s.Recon - s.KL) * n
	r.bound += s.Bound * n
	r.beta = s.Beta
}

// status is the progress bar's text: the epoch's running means.
func (r *runningMean) status(o amortized.TrainOptions) string {
	n := max(r.rows, 1)
	s := fmt.Sprintf("epoch mean so far: ELBO %.2f", r.elbo/n)
	if o.Objective == amortized.ObjectiveIWAE {
		s = fmt.Sprintf("epoch mean so far: IWAE bound (k=%d) %.2f, ELBO %.2f", max(o.K, 1), r.bound/n, r.elbo/n)
	}
	if r.beta < 1 {
		s += fmt.Sprintf(", beta %.3f", r.beta)
	}
	return s
}

// stepLine is -log-every's line: this batch's objective and its terms.
func stepLine(s amortized.StepStats, nb int, o amortized.TrainOptions) string {
	line := fmt.Sprintf("step %d (epoch %d, batch %d/%d), this batch: ", s.Step, s.Epoch, s.Batch+1, nb)
	elbo := fmt.Sprintf("ELBO %.3f (recon %.3f, KL %.3f)", s.Recon-s.KL, s.Recon, s.KL)
	switch {
	case o.Objective == amortized.ObjectiveIWAE:
		line += fmt.Sprintf("IWAE bound (k=%d) %.3f [optimized]; %s", max(o.K, 1), s.Bound, elbo)
		if s.Beta < 1 {
			line += fmt.Sprintf("; beta %.3f", s.Beta)
		}
	case s.Beta < 1 || o.FreeBits > 0:
		what := "recon - beta KL"
		if o.FreeBits > 0 {
			what = fmt.Sprintf("recon - beta KL with free bits %g", o.FreeBits)
		}
		if o.Estimator == amortized.EstimatorScore {
			// The score estimator's loss is a surrogate, not the objective's value.
			line += fmt.Sprintf("%s; optimized: %s, beta %.3f", elbo, what, s.Beta)
		} else {
			line += fmt.Sprintf("%s; optimized: %s = %.3f (beta %.3f)", elbo, what, -s.Loss, s.Beta)
		}
	default:
		line += elbo + " [optimized]"
	}
	return line
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
