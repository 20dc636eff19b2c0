package amortized

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/govae/govae/internal/kernels/cores"
	"github.com/govae/govae/internal/kernels/simd"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Data-parallel training. A batch of B rows is cut into S contiguous
// shards; each has its own training graph (for its rows) on its own copy of
// the weights, and the shards run on their own goroutines. The loss is a
// weighted sum over rows with weights 1/rows, so the batch's loss and
// gradient are the sums of the shards': the maths is the single graph's,
// with the same noise, and only the order of floating-point additions
// differs. Each shard's tape machine runs one op at a time, so shards are
// what puts every core to work on the whole step (the element-wise ops,
// gorgonia's own bookkeeping), not only on the large matrix products.
//
// The shard count is fixed by the options and the batch size, never by the
// machine, so a seed gives the same weights on any number of cores.

// minShardRows is the smallest shard the default splits a batch into.
const minShardRows = 32

// defaultShards is the shard count when TrainOptions.Shards is 0: two for
// batches of at least 2*minShardRows rows, else one. Free bits act on the
// batch-mean KL of each dimension and the score estimator feeds the graph
// samples drawn by another graph, so both keep the batch whole.
func defaultShards(batch int, o TrainOptions) int {
	if o.FreeBits > 0 || o.Estimator == EstimatorScore || o.Capacity() || batch < 2*minShardRows {
		return 1
	}
	return 2
}

// shard is one part of every batch and the graph that differentiates it.
type shard struct {
	lo, hi int          // the batch rows it holds
	g      *graph       // built for hi-lo rows
	params *nets.Params // shard 0: the model's own; others: replicas
	grads  []tensor.Tensor
	w, wk  []float64
	xk     []float32
	// outputs of the last run: weighted sums over its rows, and the index
	// of the first parameter whose gradient failed the bound (-1: none)
	loss, recon, kl, bound float64
	bad                    int
	// gradients not computed by the graph (a Bayesian decoder's scales),
	// by parameter index
	extra map[int]tensor.Tensor
}

// newShards builds the training graphs of batch rows cut into n shards.
// Shard 0 is bound to the model's parameters, the others to replicas,
// which Adam keeps equal to them (gorgonia's tape machines must not share
// tensors, see buildGraphOn).
func (m *Model) newShards(batch, n int, opts TrainOptions) ([]*shard, error) {
	var out []*shard
	D, k := m.cfg.DataDim, opts.K
	for s := range n {
		sh := &shard{lo: s * batch / n, hi: (s + 1) * batch / n, params: m.params}
		if s > 0 {
			sh.params = m.params.ZerosLike()
			if err := sh.params.CopyFrom(m.params); err != nil {
				closeShards(out)
				return nil, err
			}
		}
		rows := sh.hi - sh.lo
		g, err := m.buildGraphOn(sh.params, kindTrain, rows, opts)
		if err != nil {
			closeShards(out)
			return nil, err
		}
		sh.g = g
		sh.w = make([]float64, rows)
		if k > 1 {
			sh.xk, sh.wk = make([]float32, rows*k*D), make([]float64, rows*k)
			rep := make([]float64, rows*k*rows)
			for i := 0; i < rows; i++ {
				for j := 0; j < k; j++ {
					rep[(i*k+j)*rows+i] = 1
				}
			}
			setRows64(g.input(inRep), rep)
		}
		out = append(out, sh)
	}
	return out, nil
}

func closeShards(shs []*shard) {
	for _, sh := range shs {
		sh.g.close()
	}
}

// setInputs writes the shard's part of batch x (rows real rows) and of the
// noise t.eps into its graph.
func (t *Trainer) setInputs(sh *shard, x []float32, rows int, beta float64) error {
	g, D, L, k := sh.g, t.m.cfg.DataDim, t.m.noiseWidth(), t.opts.K
	real := min(max(rows-sh.lo, 0), sh.hi-sh.lo) // real rows in this shard
	setRows(g.input(inX), x[sh.lo*D:(sh.lo+real)*D])
	for i := range sh.w {
		sh.w[i] = 0
		if i < real {
			sh.w[i] = 1 / float64(rows)
		}
	}
	setRows64(g.input(inW), sh.w)
	if k > 1 {
		clear(sh.xk)
		clear(sh.wk)
		for i := 0; i < real; i++ {
			for j := 0; j < k; j++ {
				copy(sh.xk[(i*k+j)*D:], x[(sh.lo+i)*D:(sh.lo+i+1)*D])
				sh.wk[i*k+j] = sh.w[i] / float64(k)
			}
		}
		setRows(g.input(inXK), sh.xk)
		setRows64(g.input(inWK), sh.wk)
	}
	if err := setScalar(g.input(inBeta), beta); err != nil {
		return err
	}
	if c := g.input(inCap); c != nil {
		if err := setScalar(c, t.opts.CapacityAt(t.state.Step)); err != nil {
			return err
		}
	}
	if eps := g.input(inEps); eps != nil {
		setRows64(eps, t.eps[sh.lo*k*L:sh.hi*k*L])
	}
	return nil
}

// run runs the shard's graph on its current inputs and keeps its outputs:
// the scalars, its gradient tensors (the gradient nodes' values, which
// nothing overwrites until the next run) and the index of the first
// parameter whose gradient is not below limit in magnitude (-1 if none).
func (sh *shard) run(limit float64) error {
	if err := sh.g.run(); err != nil {
		return err
	}
	g := sh.g
	sh.grads = sh.grads[:0]
	sh.bad = -1
	for i, n := range g.gradNodes {
		if n == nil { // a Bayesian decoder's scale: filled in by bayes.go
			if sh.extra == nil {
				sh.extra = map[int]tensor.Tensor{}
			}
			if sh.extra[i] == nil {
				p := sh.params.All()[i]
				sh.extra[i] = tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Shape...))
			}
			sh.grads = append(sh.grads, sh.extra[i])
			continue
		}
		gt, ok := n.Value().(tensor.Tensor)
		if !ok {
			return fmt.Errorf("the gradient of %s is %T, not a tensor", g.bind.Nodes()[i].Name(), n.Value())
		}
		sh.grads = append(sh.grads, gt)
		if sh.bad < 0 && !gradBelow(n, gt, limit) {
			sh.bad = i
		}
	}
	sh.loss, sh.recon, sh.kl, sh.bound = g.scalar(outLoss), g.scalar(outLossRecon), g.scalar(outLossKL), g.scalar(outBound)
	return nil
}

// gradBelow reports whether every element of gradient node n's value t is
// below limit in magnitude: from the bound nets keeps for a weight
// gradient if that suffices, which spares a pass over the gradient, else
// by reading it.
func gradBelow(n *G.Node, t tensor.Tensor, limit float64) bool {
	if b, ok := nets.ProductBound(n); ok && b < limit {
		return true
	}
	return allBelow(t, limit)
}

// allBelow reports whether every element of t is below limit in magnitude
// (false at a NaN or infinity).
func allBelow(t tensor.Tensor, limit float64) bool {
	switch d := t.Data().(type) {
	case []float32:
		return simd.AllBelow(d, float32(limit))
	case []float64:
		for _, v := range d {
			if !(math.Abs(v) < limit) {
				return false
			}
		}
	}
	return true
}

// runShards runs the shards, each on its own goroutine (shard 0 on the
// caller's, see cores.Run), holding the cores meanwhile so that the GEMM and the
// element-wise ops inside run serially rather than compete with the
// shards. Each shard checks its gradients against limit (see gradLimit).
func runShards(shs []*shard, limit float64) error {
	if len(shs) == 1 || runtime.GOMAXPROCS(0) == 1 {
		for _, sh := range shs {
			if err := sh.run(limit); err != nil {
				return err
			}
		}
		return nil
	}
	release := cores.Hold()
	defer release()
	errs := make([]error, len(shs))
	cores.Run(len(shs), func(i int) { errs[i] = shs[i].run(limit) })
	return errors.Join(errs...)
}

// gradLimit is the bound on the magnitude of each shard's gradients: below
// it, the sum over n shards cannot overflow, so a step whose shards all
// pass has a finite gradient, checked before anything is changed.
func gradLimit(dt tensor.Dtype, n int) float64 {
	switch {
	case n == 1:
		return math.Inf(1) // finite is enough
	case dt == tensor.Float32:
		return math.MaxFloat32 / float64(n)
	}
	return math.MaxFloat64 / float64(n)
}

// sumGrads returns the batch's gradient: the single shard's tensors, or
// the shards' sum in dst (tensors shaped like the parameters, allocated
// when nil).
func sumGrads(shs []*shard, dst []tensor.Tensor) []tensor.Tensor {
	if len(shs) == 1 {
		return shs[0].grads
	}
	if dst == nil {
		for _, g := range shs[0].grads {
			dst = append(dst, tensor.New(tensor.Of(g.Dtype()), tensor.WithShape(g.Shape().Clone()...)))
		}
	}
	srcs := make([][]tensor.Tensor, len(shs))
	for s, sh := range shs {
		srcs[s] = sh.grads
	}
	forChunks(dst, func(_, i, lo, hi int) {
		switch d := dst[i].Data().(type) {
		case []float32:
			addShards(d[lo:hi], srcs, i, lo, hi)
		case []float64:
			addShards(d[lo:hi], srcs, i, lo, hi)
		}
	})
	return dst
}

// addShards sets dst to the sum over shards of srcs[s][i][lo:hi].
func addShards[T float32 | float64](dst []T, srcs [][]tensor.Tensor, i, lo, hi int) {
	copy(dst, srcs[0][i].Data().([]T)[lo:hi])
	for _, src := range srcs[1:] {
		s := src[i].Data().([]T)[lo:hi]
		if d32, ok := any(dst).([]float32); ok {
			simd.Add(d32, any(s).([]float32))
			continue
		}
		for j, v := range s {
			dst[j] += v
		}
	}
}

// chunkLen is the length of the pieces element-wise passes over all
// parameters are cut into: small enough to balance the cores, large enough
// that a piece costs far more than handing it out.
const chunkLen = 1 << 15

// forChunks calls f(w, i, lo, hi) for consecutive pieces [lo, hi) of every
// tensor ts[i], spread over all cores; w < GOMAXPROCS numbers the goroutine
// (for scratch space). Each element is in exactly one piece, so element-wise
// work gives the same result however it is spread.
func forChunks(ts []tensor.Tensor, f func(w, i, lo, hi int)) {
	type chunk struct{ i, lo, hi int }
	var chunks []chunk
	for i, t := range ts {
		n := t.Shape().TotalSize()
		for lo := 0; lo < n; lo += chunkLen {
			chunks = append(chunks, chunk{i, lo, min(lo+chunkLen, n)})
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	if workers <= 1 || !cores.Spare() {
		for _, c := range chunks {
			f(0, c.i, c.lo, c.hi)
		}
		return
	}
	cores.Run(workers, func(k int) {
		for j := k; j < len(chunks); j += workers {
			f(k, chunks[j].i, chunks[j].lo, chunks[j].hi)
		}
	})
}

// scaleGrads multiplies every shard's gradient by f (TrainOptions.SumLoss).
func scaleGrads(grads [][]tensor.Tensor, f float64) {
	for _, gs := range grads {
		forChunks(gs, func(_, i, lo, hi int) {
			switch d := gs[i].Data().(type) {
			case []float32:
				scale(d[lo:hi], float32(f))
			case []float64:
				scale(d[lo:hi], f)
			}
		})
	}
}

func scale[T float32 | float64](x []T, f T) {
	for i := range x {
		x[i] *= f
	}
}
