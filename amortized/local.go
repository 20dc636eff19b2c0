package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Defaults of [LocalOptions].
const (
	DefaultLocalSteps       = 300
	DefaultLocalSamples     = 10
	DefaultLocalLR          = 0.03
	DefaultLocalEvalSamples = 1000
)

// LocalOptions configures [Model.LocalELBO]. The zero value means the
// defaults named.
type LocalOptions struct {
	// Steps is the number of Adam steps on each example's variational
	// parameters; 0 means DefaultLocalSteps.
	Steps int
	// Samples is the number of z drawn per example and step to estimate the
	// ELBO's gradient; 0 means DefaultLocalSamples.
	Samples int
	// LR is Adam's step size at the first step; it decays linearly to LR/10
	// at the last, so that the final parameters do not jitter with the
	// gradient noise. 0 means DefaultLocalLR.
	LR float64
	// EvalSamples is the number of z per example behind the final
	// estimates; 0 means DefaultLocalEvalSamples.
	EvalSamples int
}

func (o LocalOptions) normalize() (LocalOptions, error) {
	if o.Steps == 0 {
		o.Steps = DefaultLocalSteps
	}
	if o.Samples == 0 {
		o.Samples = DefaultLocalSamples
	}
	if o.LR == 0 {
		o.LR = DefaultLocalLR
	}
	if o.EvalSamples == 0 {
		o.EvalSamples = DefaultLocalEvalSamples
	}
	switch {
	case o.Steps < 0:
		return o, fmt.Errorf("amortized: LocalELBO: %d steps, want >= 1 (0 for the default)", o.Steps)
	case o.Samples < 0:
		return o, fmt.Errorf("amortized: LocalELBO: %d samples per step, want >= 1 (0 for the default)", o.Samples)
	case o.EvalSamples < 0:
		return o, fmt.Errorf("amortized: LocalELBO: %d evaluation samples, want >= 1 (0 for the default)", o.EvalSamples)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return o, fmt.Errorf("amortized: LocalELBO: learning rate %g, want > 0", o.LR)
	}
	return o, nil
}

// LocalHead names one block of q's per-example parameters: an output head
// of the encoder, such as "mean" and "logvar" for the diagonal Gaussian.
type LocalHead struct {
	Name  string
	Width int
}

// LocalResult is what [Model.LocalELBO] returns, one entry per row of x.
// Bounds are in nats.
type LocalResult struct {
	// AmortizedELBO is the ELBO of q(z|x) with the encoder's parameters.
	AmortizedELBO []float64
	// LocalELBO is the ELBO after optimizing the row's own parameters,
	// estimated with the same draws of noise as AmortizedELBO.
	LocalELBO []float64
	// AmortizedIW and LocalIW are the importance-weighted bounds
	// log (1/S) sum_s p(x, z_s)/q(z_s|x) with S = EvalSamples, from the same
	// draws: estimates of log p(x) with either q as the proposal. Each is at
	// least the corresponding ELBO (Jensen's inequality on the same draws).
	AmortizedIW, LocalIW []float64
	// Heads names the blocks of Q, in order.
	Heads []LocalHead
	// Q holds each row's optimized parameters of q(z|x): the heads of
	// Heads, concatenated (for "diag", the mean then the log-variance).
	Q [][]float32
	// Trace[t] is the mean over rows of the Samples-draw ELBO estimate at
	// Adam step t, taken before that step's update: Trace[0] estimates the
	// amortized ELBO, and the curve shows the convergence.
	Trace []float64
}

// LocalELBO measures the amortization gap of Cremer, Li & Duvenaud (2018).
// For each row of x it optimizes that row's own variational parameters
// (the encoder's outputs: mean and log-variance for "diag"; those and the
// off-diagonal n_ij of the unit lower-triangular factor for "fullcov"; the
// base Gaussian and the per-example flow parameters for "planar:K" and
// "radial:K"; the base Gaussian and the context for "iaf:K", whose
// autoregressive networks are shared and stay fixed) to maximize its ELBO,
// starting from the encoder's output, with the decoder fixed:
//
//	ELBO*(x) = max_lambda E_{q(z; lambda)}[log p(x|z) + log p(z) - log q(z; lambda)]
//
// The gap log p(x) - ELBO_amortized(x) then splits into the approximation
// gap log p(x) - ELBO*(x), which no encoder can close within the family, and
// the amortization gap ELBO*(x) - ELBO_amortized(x), the price of one
// encoder for all x.
//
// Optimization: Adam (betas 0.9, 0.999, epsilon 1e-8) for opts.Steps steps,
// each on the reparameterized gradient of the ELBO from opts.Samples draws
// of z (the KL in closed form for the Gaussian families, by Monte Carlo for
// flows), with the step size decaying linearly from opts.LR to opts.LR/10.
// Adam acts coordinate by coordinate, so optimizing rows together in one
// graph is the same as optimizing each alone. The final estimates use
// opts.EvalSamples draws of the standard-normal noise per row, the same
// draws for the amortized and the optimized q: the ELBOs are the mean of
// log w = log p(x|z) + log p(z) - log q(z|x), the IW bounds its log-mean-exp,
// so the differences carry little Monte Carlo noise.
//
// Like [Model.LogLikelihood], the work is spread over GOMAXPROCS
// goroutines, each on its own copy of the weights, and the noise of each
// row comes from its own seeds drawn from rng in row order: the result does
// not depend on scheduling. Do not call it while training m.
func (m *Model) LocalELBO(x [][]float32, opts LocalOptions, rng *rand.Rand) (LocalResult, error) {
	opts, err := opts.normalize()
	if err != nil {
		return LocalResult{}, err
	}
	if rng == nil {
		return LocalResult{}, errors.New("amortized: LocalELBO: rng is nil")
	}
	flat, err := m.checkData(x)
	if err != nil {
		return LocalResult{}, err
	}
	n := len(x)
	q0, err := m.encodeHeads(flat, n)
	if err != nil {
		return LocalResult{}, err
	}
	widths := m.headWidths()
	optSeeds, evalSeeds := make([]uint64, n), make([]uint64, n)
	for i := range n {
		optSeeds[i], evalSeeds[i] = rng.Uint64(), rng.Uint64()
	}

	// A unit is a block of whole rows optimized together in one graph of
	// perUnit*Samples rows.
	perUnit := max(1, evalChunk/opts.Samples)
	units := (n + perUnit - 1) / perUnit
	copies, release, err := m.workerCopies(units)
	if err != nil {
		return LocalResult{}, err
	}
	defer release()
	workers := len(copies)
	lj := &localJob{m: m, opts: opts, flat: flat, widths: widths, q0: q0, optSeeds: optSeeds, evalSeeds: evalSeeds,
		traces: make([][]float64, units),
		res: LocalResult{AmortizedELBO: make([]float64, n), LocalELBO: make([]float64, n),
			AmortizedIW: make([]float64, n), LocalIW: make([]float64, n)}}
	for h, w := range widths {
		lj.q = append(lj.q, append(make([]float64, 0, n*w), q0[h]...))
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = lj.work(copies[w].params, min(perUnit, n), units, perUnit, &next)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return LocalResult{}, err
	}
	res := lj.res
	for _, hd := range m.qHeads() {
		res.Heads = append(res.Heads, LocalHead{Name: hd.Name, Width: hd.Width})
	}
	res.Q = make([][]float32, n)
	for i := range n {
		for h, w := range widths {
			res.Q[i] = append(res.Q[i], toFloat32(lj.q[h][i*w:(i+1)*w])...)
		}
	}
	res.Trace = make([]float64, opts.Steps)
	for _, tr := range lj.traces { // in unit order: the sum does not depend on scheduling
		for t, v := range tr {
			res.Trace[t] += v / float64(n)
		}
	}
	return res, nil
}

// localJob is the shared state of one LocalELBO call. Workers write
// disjoint rows of q and res, and their own units' traces.
type localJob struct {
	m                   *Model
	opts                LocalOptions
	flat                []float32
	widths              []int
	q0, q               [][]float64 // per head, row-major: the encoder's output and the optimized values
	optSeeds, evalSeeds []uint64
	traces              [][]float64
	res                 LocalResult
}

// work runs units until none is left, on graphs bound to ps.
func (lj *localJob) work(ps *nets.Params, size, units, perUnit int, next *atomic.Int64) error {
	lg, err := lj.m.newLocalGraph(ps, size, lj.opts.Samples)
	if err != nil {
		return err
	}
	defer lg.vm.Close()
	eg, err := lj.m.buildGraphOn(ps, kindLogW, evalChunk, TrainOptions{})
	if err != nil {
		return err
	}
	defer eg.close()
	n := len(lj.optSeeds)
	for {
		u := int(next.Add(1) - 1)
		if u >= units {
			return nil
		}
		r0, r1 := u*perUnit, min((u+1)*perUnit, n)
		if lj.traces[u], err = lj.optimize(lg, r0, r1); err != nil {
			return err
		}
		if err := lj.evaluate(eg, r0, r1); err != nil {
			return err
		}
	}
}

// optimize runs Adam on the q parameters of rows [r0, r1), leaving them in
// lj.q, and returns the sum over the rows of the ELBO estimate at each step.
func (lj *localJob) optimize(lg *localGraph, r0, r1 int) ([]float64, error) {
	D, L, M, o := lj.m.cfg.DataDim, lj.m.noiseWidth(), lj.opts.Samples, lj.opts
	rows := r1 - r0
	xk := make([]float32, rows*M*D)
	for b := range rows {
		for j := range M {
			copy(xk[(b*M+j)*D:], lj.flat[(r0+b)*D:(r0+b+1)*D])
		}
	}
	setRows(lg.x, xk)
	w := make([]float64, lg.batch)
	for b := range rows {
		w[b] = 1
	}
	setRows64(lg.w, w)
	eps := make([]float64, rows*M*L)
	params := make([][]float64, len(lj.widths)) // this unit's rows of each head, updated in place
	opt := NewAdam(o.LR, 0.9, 0.999, 1e-8)
	for h, wd := range lj.widths {
		params[h] = lj.q[h][r0*wd : r1*wd]
	}
	trace := make([]float64, o.Steps)
	var est []float64
	grads := make([][]float64, len(lj.widths))
	for t := range o.Steps {
		for b := range rows {
			r := rand.New(rand.NewPCG(lj.optSeeds[r0+b], uint64(t)))
			for i := range M * L {
				eps[b*M*L+i] = r.NormFloat64()
			}
		}
		setRows64(lg.eps, eps)
		for h, p := range params {
			setRows64(lg.leaves[h], p)
		}
		var err error
		if est, err = lg.step(est, grads); err != nil {
			return nil, err
		}
		for b := range rows {
			if nonFinite(est[b]) {
				return nil, fmt.Errorf("amortized: LocalELBO: row %d: the ELBO is not finite at step %d", r0+b, t)
			}
			trace[t] += est[b]
		}
		// The loss is -ELBO: descend on it.
		lr := o.LR * (1 - 0.9*float64(t)/float64(max(o.Steps-1, 1)))
		for h, p := range params {
			g := grads[h][:len(p)]
			for _, v := range g {
				if nonFinite(v) {
					return nil, fmt.Errorf("amortized: LocalELBO: a gradient is not finite at step %d (rows %d-%d)", t, r0, r1-1)
				}
			}
		}
		opt.StepFloat64s(params, grads, lr)
	}
	return trace, nil
}

// evaluate estimates, for rows [r0, r1), both ELBOs and both
// importance-weighted bounds from the same EvalSamples draws per row.
func (lj *localJob) evaluate(eg *graph, r0, r1 int) error {
	D, L, S := lj.m.cfg.DataDim, lj.m.noiseWidth(), lj.opts.EvalSamples
	size := eg.batch
	x := make([]float32, size*D)
	ep := make([]float64, size*L)
	bufs := [2][][]float64{} // amortized, local: per head, size rows
	for _, w := range lj.widths {
		for k := range bufs {
			bufs[k] = append(bufs[k], make([]float64, size*w))
		}
	}
	item := make([]int, 0, size)
	type acc struct {
		sum float64 // of log w
		lse lseAcc
	}
	accs := make([][2]acc, r1-r0)
	var r *rand.Rand
	var lw []float64
	total := (r1 - r0) * S
	for start := 0; start < total; start += size {
		item = item[:0]
		for t := start; t < min(start+size, total); t++ {
			row, s := r0+t/S, t%S
			if s == 0 {
				r = rand.New(rand.NewPCG(lj.evalSeeds[row], 0))
			}
			i := len(item)
			copy(x[i*D:(i+1)*D], lj.flat[row*D:(row+1)*D])
			for j := range L {
				ep[i*L+j] = r.NormFloat64()
			}
			for h, w := range lj.widths {
				copy(bufs[0][h][i*w:(i+1)*w], lj.q0[h][row*w:(row+1)*w])
				copy(bufs[1][h][i*w:(i+1)*w], lj.q[h][row*w:(row+1)*w])
			}
			item = append(item, row)
		}
		used := len(item)
		setRows(eg.input(inX), x[:used*D])
		setRows64(eg.input(inEps), ep[:used*L])
		for which, qb := range bufs {
			for h, hd := range lj.m.qHeads() {
				setRows64(eg.input(inHead+hd.Name), qb[h][:used*hd.Width])
			}
			if err := eg.run(); err != nil {
				return err
			}
			lw = eg.read(outLogW, lw)
			for i, row := range item {
				a := &accs[row-r0][which]
				a.sum += lw[i]
				a.lse.add(lw[i])
			}
		}
	}
	for b := range accs {
		row := r0 + b
		for which := range 2 {
			a := &accs[b][which]
			elbo := a.sum / float64(S)
			iw, _ := a.lse.result(S)
			if which == 0 {
				lj.res.AmortizedELBO[row], lj.res.AmortizedIW[row] = elbo, iw
			} else {
				lj.res.LocalELBO[row], lj.res.LocalIW[row] = elbo, iw
			}
		}
	}
	return nil
}

// localGraph computes, for B rows with M draws each, the ELBO estimate per
// row and its gradient with respect to the rows' own q parameters, which
// are leaves of the graph (one per encoder head); the decoder's weights,
// and IAF's autoregressive networks, are bound but not differentiated.
type localGraph struct {
	batch, samples int
	vm             G.VM
	// Inputs: x repeated M times (row b*M+j is draw j of row b), the noise,
	// and w, 1 for a real row and 0 for padding.
	x, eps, w *G.Node
	leaves    []*G.Node // per head (B x width), differentiated
	elbo      *G.Node   // per-row estimate (B)
	loss      *G.Node   // -sum_b w_b elbo_b
	outElbo   G.Value
	outLoss   G.Value
	grads     []tensor.Tensor // of the leaves, found after the first run
}

// newLocalGraph builds a localGraph for batch rows and samples draws on the
// weights in ps.
func (m *Model) newLocalGraph(ps *nets.Params, batch, samples int) (lg *localGraph, err error) {
	graphBuild.Lock()
	defer graphBuild.Unlock()
	defer recoverBuild(&err, "the local ELBO graph")
	bd := m.newBuilder(ps)
	g := bd.g
	B, M, D, L := batch, samples, m.cfg.DataDim, m.noiseWidth()
	lg = &localGraph{batch: B, samples: M}
	rep := bd.input("rep", B*M, B) // repeats each row's parameters M times
	r := make([]float64, B*M*B)
	for b := range B {
		for j := range M {
			r[(b*M+j)*B+b] = 1
		}
	}
	setRows64(rep, r)
	leaves := HeadValues{}
	for h, hd := range m.qHeads() {
		leaf := G.NodeFromAny(g, tensor.New(tensor.Of(bd.dt), tensor.WithShape(B, hd.Width)), G.WithName(fmt.Sprintf("local.%d", h)))
		lg.leaves = append(lg.leaves, leaf)
		leaves[hd.Name] = leaf
	}
	lg.x = bd.input("x", B*M, D)
	lg.eps = bd.input("eps", B*M, L)
	lg.w = bd.input("w", B)
	t := bd.newTerms(draw{heads: leaves, rep: rep, xs: lg.x, eps: lg.eps})
	perRow := func(v *G.Node) *G.Node { // mean over each row's M draws
		s := must(G.Sum(must(G.Reshape(v, []int{B, M})), 1))
		return must(G.Mul(s, bd.Scalar(1/float64(M))))
	}
	if kl := t.KL(); kl.analytic {
		lg.elbo = must(G.Sub(perRow(t.Recon()), kl.row))
	} else {
		lg.elbo = perRow(t.LogW())
	}
	lg.loss = must(G.Neg(must(G.Mul(lg.w, lg.elbo))))
	if _, err := G.Grad(lg.loss, lg.leaves...); err != nil {
		return nil, fmt.Errorf("amortized: differentiating the local ELBO: %w", err)
	}
	G.Read(lg.elbo, &lg.outElbo)
	G.Read(lg.loss, &lg.outLoss)
	lg.vm = G.NewTapeMachine(g, G.BindDualValues(lg.leaves...))
	return lg, nil
}

// step runs the graph on its current inputs and returns the per-row ELBO
// estimates, leaving in grads[h] the gradient of the loss (-ELBO) with
// respect to leaf h, row-major; the gradient tensors are zeroed for the
// next run.
func (lg *localGraph) step(est []float64, grads [][]float64) ([]float64, error) {
	err := lg.vm.RunAll()
	lg.vm.Reset()
	if err != nil {
		return nil, fmt.Errorf("amortized: LocalELBO: %w", err)
	}
	if lg.grads == nil {
		for _, n := range lg.leaves {
			gv, err := n.Grad()
			if err != nil {
				return nil, fmt.Errorf("amortized: LocalELBO: gradient of %s: %w", n.Name(), err)
			}
			gt, ok := gv.(tensor.Tensor)
			if !ok {
				return nil, fmt.Errorf("amortized: LocalELBO: %s has no gradient tensor (%T)", n.Name(), gv)
			}
			lg.grads = append(lg.grads, gt)
		}
	}
	est = valueFloats(lg.outElbo, est)
	for h, gt := range lg.grads {
		grads[h] = tensorValues(gt, grads[h])
		gt.Zero() // the tape machine adds into gradients
	}
	return est, nil
}
