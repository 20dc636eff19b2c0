package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
)

// DefaultImputeIters is the number of sweeps Impute runs when
// ImputeOptions.Iters is 0. On MNIST with half of each image hidden, the
// error changes little beyond it.
const DefaultImputeIters = 50

// imputeAhead bounds the noise Impute draws ahead for one chunk, in values
// (16 MiB): the default sweeps of 500 rows need 500 * L * 50.
var imputeAhead = 1 << 21 // a variable for the test of the serial path

// imputeStart is the value of every missing pixel before the first sweep.
const imputeStart = 0.5

// ImputeOptions configures [Model.Impute]. The zero value runs one chain of
// DefaultImputeIters sweeps that draw z from q(z|x).
type ImputeOptions struct {
	// Iters is the number of sweeps; 0 means DefaultImputeIters. There is
	// no way to ask for no sweep: the starting fill is not an imputation.
	Iters int
	// Mean uses the mean of q(z|x) in every sweep instead of a draw from
	// it (for flow posteriors, [Model.Encode]'s point summary, the flow
	// applied to the base mean), a deterministic fixed-point iteration that
	// needs no rng. False means draws: the Markov chain of Rezende et al. (2014).
	Mean bool
	// Chains is the number of independent chains run from each row, whose
	// final missing pixels are averaged: an estimate of E[x_m | x_o], which
	// has a lower expected squared error than any single draw, at the cost
	// of sharpness. 0 means 1; more than 1 needs draws (Mean false).
	Chains int
}

// Impute fills in the missing pixels of each row of x, where observed[i][j]
// is false, by the iterated conditional sampling of Rezende, Mohamed &
// Wierstra (2014). Starting from x with its missing pixels set to 0.5, each
// sweep
//
//	draws z ~ q(z|x)              (z = Encode's summary of q(z|x) with opts.Mean)
//	sets x_m = E[x_m | z]         for the missing pixels m only
//
// and the result is x after the last sweep (averaged over opts.Chains
// chains). Missing pixels thus take the mean of p(x|z), pixel probabilities
// for a Bernoulli model, rather than a draw of pixel noise: the chain's
// randomness is in z, and an imputation looks like a [Model.Sample] image.
// Observed pixels come back exactly as given, bit for bit.
//
// Entries of x where observed is false are ignored, so they may hold
// anything, NaN included. Observed entries must be finite, and in [0,1] for
// a Bernoulli model. rng may be nil only with opts.Mean. The result does not
// share memory with x.
func (m *Model) Impute(x [][]float32, observed [][]bool, opts ImputeOptions, rng *rand.Rand) ([][]float32, error) {
	if err := m.checkImpute(x, observed, opts, rng); err != nil {
		return nil, err
	}
	iters, chains := opts.Iters, max(opts.Chains, 1)
	if iters == 0 {
		iters = DefaultImputeIters
	}
	n, D, L := len(x)*chains, m.cfg.DataDim, m.noiseWidth()
	missing := make([][]int, len(x))
	for i, obs := range observed {
		for j, seen := range obs {
			if !seen {
				missing[i] = append(missing[i], j)
			}
		}
	}
	// Row i*chains+c of flat is chain c of row i of x.
	flat := make([]float32, n*D)
	for r := range n {
		copy(flat[r*D:], x[r/chains])
		for _, j := range missing[r/chains] {
			flat[r*D+j] = imputeStart
		}
	}
	size := min(n, evalChunk)
	// With draws, a chunk's noise is drawn whole, chunk after chunk in row
	// order (the order of the serial loop), so that the chunks can run on
	// all cores and give the same numbers as one core. Past imputeAhead
	// values a chunk (very many sweeps) they run one after another instead,
	// drawing as they go, rather than hold that much noise.
	ahead := !opts.Mean && size*L*iters <= imputeAhead
	each := m.chunks
	if opts.Mean || ahead {
		each = m.parChunks
	}
	var order drawOrder
	err := each(kindRecon, n, func(g *graph, start, rows int) error {
		xs := flat[start*D : (start+rows)*D]
		e := make([]float64, rows*L) // stays zero with opts.Mean: z is the point summary
		var noise []float64
		if ahead {
			noise = make([]float64, iters*rows*L)
			order.draw(start, start+rows, func() {
				for i := range noise {
					noise[i] = rng.NormFloat64()
				}
			})
		}
		var mean []float64
		for it := range iters {
			setRows(g.input(inX), xs)
			switch {
			case ahead:
				e = noise[it*rows*L : (it+1)*rows*L]
			case !opts.Mean:
				for i := range e {
					e[i] = rng.NormFloat64()
				}
			}
			setRows64(g.input(inEps), e)
			if err := g.run(); err != nil {
				return err
			}
			mean = g.read(outMean, mean)
			for r := range rows {
				for _, j := range missing[(start+r)/chains] {
					xs[r*D+j] = float32(mean[r*D+j])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(x))
	for i := range out {
		if chains == 1 {
			out[i] = flat[i*D : (i+1)*D : (i+1)*D]
			continue
		}
		row := append([]float32(nil), x[i]...)
		for _, j := range missing[i] {
			var s float64
			for c := range chains {
				s += float64(flat[(i*chains+c)*D+j])
			}
			row[j] = float32(s / float64(chains))
		}
		out[i] = row
	}
	return out, nil
}

// checkImpute validates Impute's arguments.
func (m *Model) checkImpute(x [][]float32, observed [][]bool, opts ImputeOptions, rng *rand.Rand) error {
	D := m.cfg.DataDim
	switch {
	case len(x) == 0:
		return errors.New("amortized: Impute: x has no rows")
	case len(observed) != len(x):
		return fmt.Errorf("amortized: Impute: x has %d rows but observed has %d", len(x), len(observed))
	case opts.Iters < 0:
		return fmt.Errorf("amortized: Impute: Iters = %d, want >= 0 (0 means %d)", opts.Iters, DefaultImputeIters)
	case opts.Chains < 0:
		return fmt.Errorf("amortized: Impute: Chains = %d, want >= 0 (0 means 1)", opts.Chains)
	case opts.Chains > 1 && opts.Mean:
		return fmt.Errorf("amortized: Impute: Chains = %d with Mean: the chains would be identical; want draws (Mean false) or one chain", opts.Chains)
	case rng == nil && !opts.Mean:
		return errors.New("amortized: Impute: rng is nil; drawing z needs one (or set Mean)")
	}
	if err := checkAlloc("Impute", fmt.Sprintf("Chains = %d for %d rows", max(opts.Chains, 1), len(x)), max(opts.Chains, 1), len(x)*D); err != nil {
		return err
	}
	for i, row := range x {
		if len(row) != D {
			return fmt.Errorf("amortized: Impute: x row %d has %d values, want %d", i, len(row), D)
		}
		if len(observed[i]) != D {
			return fmt.Errorf("amortized: Impute: observed row %d has %d values, want %d", i, len(observed[i]), D)
		}
		for j, v := range row {
			if !observed[i][j] {
				continue
			}
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("amortized: Impute: observed x[%d][%d] = %v, want a finite value", i, j, v)
			}
			if err := m.lik.CheckValue(v); err != nil {
				return fmt.Errorf("amortized: Impute: observed x[%d][%d] = %v, %w", i, j, v, err)
			}
		}
	}
	return nil
}

// drawOrder makes concurrent chunks take their draws from one rng in row
// order: the chunk starting at row start waits until every row before it
// has drawn. parChunks hands chunks out in row order and a chunk draws
// before anything else, so the wait is short and cannot deadlock.
type drawOrder struct {
	mu   sync.Mutex
	cond *sync.Cond
	next int // the first row whose chunk has not drawn yet
}

func (o *drawOrder) draw(start, end int, draw func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cond == nil {
		o.cond = sync.NewCond(&o.mu)
	}
	for o.next != start {
		o.cond.Wait()
	}
	draw()
	o.next = end
	o.cond.Broadcast()
}
