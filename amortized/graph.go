package amortized

import (
	"errors"
	"fmt"
	"sync"

	"github.com/govae/govae/internal/kernels/tape"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graphKind says which computation a graph holds.
type graphKind int

const (
	kindTrain     graphKind = iota // x, eps, w, beta -> loss and its gradient
	kindEval                       // x, eps -> per-row reconstruction term, KL, log weights
	kindEncode                     // x -> the encoder's heads and q's point summary
	kindDecode                     // z -> mean of p(x|z)
	kindLogW                       // x, q's heads, eps -> z, log p(x|z), log importance weight
	kindSample                     // the prior's noise -> z ~ p(z) and the mean of p(x|z)
	kindRecon                      // x, eps -> the mean of p(x|z) at z ~ q(z|x), nothing else (Reconstruct, Impute)
	kindPrepHeads                  // x -> a HeadPreparer family's prepared heads
	kindLogWPrep                   // kindLogW on prepared heads
	kindLogWZ                      // x, z -> log p(x|z), on weights fixed during a run (see diagLogW; kept graphs repack, nets.Repack)
)

// Names of a graph's inputs and outputs. Inputs are bound once to tensors
// whose backing slices are rewritten before every run.
const (
	inX    = "x"    // data, one row per example
	inEps  = "eps"  // standard-normal noise, one row per sample
	inZ    = "z"    // given z: decode, or the score estimator's samples
	inW    = "w"    // per-example weight in the loss: 1/rows, 0 for padding
	inBeta = "beta" // KL weight
	inCap  = "cap"  // capacity objective's target C(t)
	inRep  = "rep"  // k > 1: the (Bk x B) 0/1 matrix repeating each example k times
	inXK   = "xk"   // k > 1: the examples repeated
	inWK   = "wk"   // k > 1: each sample's weight w_i/k
	inAdv  = "adv"  // score estimator: each sample's advantage log p(x|z) - b
	inU    = "u"    // uniform noise of a prior's sampler
	inHead = "q."   // + head name: q's heads given per row (kindLogW)

	outPoint     = "point"      // Encode's point summary
	outMean      = "mean"       // mean of p(x|z)
	outRecon     = "recon"      // log p(x|z) per row
	outKL        = "kl"         // KL(q||p) per row (closed form, or estimated at the sample)
	outLogQ      = "logq"       // log q(z|x) per row
	outLogP      = "logp"       // log p(z) per row
	outZ         = "z"          // the sampled z
	outLogW      = "logw"       // log p(x|z) + log p(z) - log q(z|x) per row
	outLoss      = "loss"       // training loss (scalar)
	outLossRecon = "loss.recon" // weighted mean of recon (scalar), for reporting
	outLossKL    = "loss.kl"    // weighted mean of kl (scalar)
	outBound     = "bound"      // the objective's estimate, weighted mean (scalar)
	outHead      = "head."      // + head name: the encoder's heads (kindEncode)
)

// graph is one compiled computation for a fixed batch size. A run
// allocates nothing of ours.
type graph struct {
	kind  graphKind
	batch int
	g     *G.ExprGraph
	bind  *nets.Binding
	vm    *tape.Machine // run on the caller's goroutine (see internal/kernels/tape)

	in  map[string]*G.Node // inputs by name (in*)
	out map[string]*G.Node // outputs by name (out*)
	// analyticKL says out[outKL] is a closed form (else a one-sample estimate).
	analyticKL bool
	// xReadOnly says no op writes into the value of the input x (it only
	// feeds the fused Bernoulli term), so rows left there stay valid.
	xReadOnly bool
	// gradNodes are the loss's gradient with respect to each parameter, in
	// the binding's order (kindTrain).
	gradNodes []*G.Node

	// outs holds copies of the nodes read from Go, taken by gorgonia's Read
	// op as each is computed: the tape machine reuses buffers in place, so
	// an intermediate node's own value may be overwritten by the end of a run.
	outs map[*G.Node]*G.Value
}

// input returns the named input node (nil if the graph has none).
func (gr *graph) input(name string) *G.Node { return gr.in[name] }

func (gr *graph) newInput(bd *Builder, name string, shape ...int) *G.Node {
	n := bd.input(name, shape...)
	gr.in[name] = n
	return n
}

// trainGraph adds the training loss and its gradient for opts' objective,
// number of samples k and estimator.
func (bd *Builder) trainGraph(gr *graph, opts TrainOptions) error {
	B, D, k := gr.batch, bd.m.cfg.DataDim, opts.K
	n := B * k
	x := gr.newInput(bd, inX, B, D)
	w := gr.newInput(bd, inW, B)
	beta := gr.newInput(bd, inBeta)
	d := draw{heads: bd.encodeData(x), x: x}
	wk := w
	if k > 1 {
		d.rep = gr.newInput(bd, inRep, n, B)
		d.xs = gr.newInput(bd, inXK, n, D)
		wk = gr.newInput(bd, inWK, n)
	}
	if opts.Estimator == EstimatorScore {
		d.z = gr.newInput(bd, inZ, n, bd.m.cfg.Latent)
	} else {
		d.eps = gr.newInput(bd, inEps, n, bd.m.noiseWidth())
	}
	t := bd.newTerms(d)
	recon := t.Recon()
	// Weighted sums are means over the real rows (and samples).
	lossRecon := must(G.Mul(wk, recon))
	kl := t.KL()
	var lossKL, klTerm *G.Node
	switch {
	case kl.dims != nil:
		klPerDim := must(G.Mul(must(G.Transpose(kl.dims)), w))
		lossKL = must(G.Sum(klPerDim))
		klTerm = lossKL
		if opts.FreeBits > 0 {
			// Free bits (Kingma et al. 2016): each dimension's batch-mean KL
			// counts as at least lambda, so no gradient pushes it below.
			lam := bd.Scalar(opts.FreeBits)
			klTerm = must(G.Sum(must(G.Add(must(G.Rectify(must(G.Sub(klPerDim, lam)))), lam))))
		}
	case kl.analytic:
		lossKL = must(G.Mul(w, kl.row))
		klTerm = lossKL
	default:
		lossKL = must(G.Mul(wk, kl.row))
		klTerm = lossKL
	}
	if opts.Capacity() {
		// Burgess et al. (2018): the KL is pulled towards the target C(t).
		c := gr.newInput(bd, inCap)
		klTerm = must(G.Abs(must(G.Sub(klTerm, c))))
	}
	var loss, bound *G.Node
	switch {
	case opts.Objective == ObjectiveIWAE:
		// The bound is the log of the mean weight (Burda et al. 2015).
		perEx := bd.logMeanExp(must(G.Reshape(t.LogW(), []int{B, k})), k)
		bound = must(G.Mul(w, perEx))
		loss = must(G.Neg(bound))
	case opts.Estimator == EstimatorScore:
		// Surrogate whose encoder gradient is E[(log p(x|z) - b) grad log q(z|x)]
		// (the score function), plus the exact gradient of the analytic KL.
		// adv is an input, so the decoder's gradient comes from recon alone.
		adv := gr.newInput(bd, inAdv, n)
		score := must(G.Mul(wk, must(G.HadamardProd(adv, t.LogQ()))))
		bound = must(G.Sub(lossRecon, lossKL))
		loss = must(G.Sub(must(G.Sub(must(G.Mul(beta, klTerm)), lossRecon)), score))
	default:
		bound = must(G.Sub(lossRecon, lossKL))
		loss = must(G.Sub(must(G.Mul(beta, klTerm)), lossRecon))
	}
	gr.out[outLoss], gr.out[outLossRecon], gr.out[outLossKL], gr.out[outBound] = loss, lossRecon, lossKL, bound
	// A Bayesian decoder's scales (rho) are not in the graph: their
	// gradient is made from the weights' outside it (bayes.go); their
	// entries of gradNodes stay nil.
	pairs := bayesPairs(bd.m.params, bd.m.cfg)
	var wrt G.Nodes
	for i, n := range bd.b.Nodes() {
		if !isBayesScale(pairs, i) {
			wrt = append(wrt, n)
		}
	}
	dw, err := G.Grad(loss, wrt...)
	for _, hg := range bd.groups {
		if !hg.Complete() { // whether or not Grad failed for it
			return errHeadGroup
		}
	}
	if err != nil {
		return fmt.Errorf("amortized: differentiating the loss: %w", err)
	}
	grads := make([]*G.Node, len(bd.b.Nodes()))
	for i, j := 0, 0; i < len(grads); i++ {
		if !isBayesScale(pairs, i) {
			grads[i], j = dw[j], j+1
		}
	}
	// The gradients are read from these nodes' values after a run, rather
	// than added into dual values (gorgonia's way, a pass over every weight
	// in the slow tensor loop, plus zeroing). That is only sound if nothing
	// else reads a gradient node: an op that did could overwrite its value
	// in place. Every parameter enters through nets' fused ops or a
	// mask product, whose gradients feed nothing.
	for i, gn := range grads {
		if gn != nil && gr.g.To(gn.ID()).Len() > 0 {
			return fmt.Errorf("amortized: the gradient of %s feeds other nodes", bd.b.Nodes()[i].Name())
		}
	}
	gr.gradNodes = grads
	return nil
}

// errHeadGroup: an encoder head was not differentiated, so its group's
// gradient node (nets.HeadGroup) was never made; buildGraphOn builds the
// graph again without groups.
var errHeadGroup = errors.New("amortized: an encoder head is not on the gradient's path")

// graphBuild serializes the construction of graphs: gorgonia keeps global
// state while building (internal/encoding's group counter, written without
// synchronization), so graphs built on two goroutines at once race.
// Running them in parallel is fine.
var graphBuild sync.Mutex

// buildGraph compiles a graph of the given kind and batch size on the
// model's parameters. opts only matters for training graphs.
func (m *Model) buildGraph(kind graphKind, batch int, opts TrainOptions) (*graph, error) {
	return m.buildGraphOn(m.params, kind, batch, opts)
}

// newBuilder starts a graph on the parameters ps (a store with the model's
// parameter names).
func (m *Model) newBuilder(ps *nets.Params) *Builder {
	g := G.NewGraph()
	return &Builder{m: m, g: g, b: ps.Bind(g), dt: ps.Dtype()}
}

// buildGraphOn is buildGraph bound to ps, a store with the model's parameter
// names. Graphs that run concurrently need their own copies: gorgonia sets
// the engine of bound tensors when it compiles and may reshape them in place
// while it runs, so two graphs sharing tensors race.
func (m *Model) buildGraphOn(ps *nets.Params, kind graphKind, batch int, opts TrainOptions) (*graph, error) {
	graphBuild.Lock()
	defer graphBuild.Unlock()
	gr, err := m.buildGraphOnce(ps, kind, batch, opts, kind == kindTrain)
	if errors.Is(err, errHeadGroup) {
		gr, err = m.buildGraphOnce(ps, kind, batch, opts, false)
	}
	return gr, err
}

// buildGraphOnce is buildGraphOn, with the encoder's heads grouped
// (Builder.groupHeads) or not.
func (m *Model) buildGraphOnce(ps *nets.Params, kind graphKind, batch int, opts TrainOptions, group bool) (gr *graph, err error) {
	defer recoverBuild(&err, "graph")
	bd := m.newBuilder(ps)
	bd.groupHeads = group
	bd.evalOnly = kind == kindEval || kind == kindLogW || kind == kindLogWPrep || kind == kindLogWZ
	bd.fixedW = kind == kindLogWZ // weights that do not change during a LogLikelihood call (a kept graph repacks: nets.Repack)
	gr = &graph{kind: kind, batch: batch, g: bd.g, bind: bd.b, in: map[string]*G.Node{}, out: map[string]*G.Node{}}
	D, L := m.cfg.DataDim, m.cfg.Latent

	switch kind {
	case kindDecode:
		z := gr.newInput(bd, inZ, batch, L)
		gr.out[outMean] = bd.decode(z).Mean()
	case kindSample:
		normal, uniform := m.priorNoise()
		noise := PriorNoise{Normal: gr.newInput(bd, inEps, batch, normal)}
		if uniform > 0 {
			noise.Uniform = gr.newInput(bd, inU, batch, uniform)
		}
		z := bd.Prior().Sample(noise)
		gr.out[outZ], gr.out[outMean] = z, bd.decode(z).Mean()
	case kindEncode:
		x := gr.newInput(bd, inX, batch, D)
		heads := bd.encodeData(x)
		for name, h := range heads {
			gr.out[outHead+name] = h
		}
		gr.out[outPoint] = bd.bindQ(heads, x).Point()
	case kindRecon:
		// The z of kindEval's terms (a stratified q's too, see terms.Z),
		// without the terms: the tape machine runs every node of a graph.
		x := gr.newInput(bd, inX, batch, D)
		eps := gr.newInput(bd, inEps, batch, m.noiseWidth())
		z, _ := bd.bindQ(bd.encodeData(x), x).Sample(eps)
		gr.out[outMean] = bd.decode(z).Mean()
	case kindEval:
		x := gr.newInput(bd, inX, batch, D)
		eps := gr.newInput(bd, inEps, batch, m.noiseWidth())
		t := bd.newTerms(draw{heads: bd.encodeData(x), x: x, eps: eps})
		gr.out[outRecon] = t.Recon()
		gr.out[outLogQ], gr.out[outLogP] = t.LogQ(), t.LogP()
		kl := t.KL()
		gr.out[outKL], gr.analyticKL = kl.row, kl.analytic
	case kindPrepHeads:
		x := gr.newInput(bd, inX, batch, D)
		for name, h := range m.family.(HeadPreparer).PrepareHeads(bd, bd.encodeData(x)) {
			gr.out[outHead+name] = h
		}
	case kindLogW, kindLogWPrep:
		x := gr.newInput(bd, inX, batch, D)
		heads := HeadValues{}
		for _, hd := range m.logWHeads(kind) {
			heads[hd.Name] = gr.newInput(bd, inHead+hd.Name, batch, hd.Width)
		}
		eps := gr.newInput(bd, inEps, batch, m.noiseWidth())
		t := bd.newTerms(draw{heads: heads, x: x, eps: eps, prepared: kind == kindLogWPrep})
		gr.out[outZ], gr.out[outRecon], gr.out[outLogW] = t.Z(), t.Recon(), t.LogW()
	case kindLogWZ:
		x := gr.newInput(bd, inX, batch, D)
		dec := bd.decode(gr.newInput(bd, inZ, batch, L))
		gr.out[outRecon] = dec.LogProb(x)
		if bern, ok := dec.(*bernoulliDecoded); ok && bern.fused {
			gr.xReadOnly = true
		}
	case kindTrain:
		if err := bd.trainGraph(gr, opts); err != nil {
			return nil, err
		}
	}
	gr.outs = map[*G.Node]*G.Value{}
	for _, n := range gr.out {
		if _, dup := gr.outs[n]; n != nil && !dup {
			v := new(G.Value)
			G.Read(n, v)
			gr.outs[n] = v
		}
	}
	if gr.vm, err = tape.New(G.NewTapeMachine(bd.g)); err != nil {
		return nil, err
	}
	return gr, nil
}

// run executes the graph once on its current inputs.
func (gr *graph) run() error {
	return gr.vm.Run()
}

func (gr *graph) close() { gr.vm.VM().Close() }

// setRows copies rows of width dim from src into the input node, zero-filling
// the padding rows beyond len(src)/dim.
func setRows(n *G.Node, src []float32) {
	switch d := n.Value().Data().(type) {
	case []float32:
		k := copy(d, src)
		clear(d[k:])
	case []float64:
		for i, v := range src {
			d[i] = float64(v)
		}
		clear(d[len(src):])
	}
}

// setRows64 is setRows for float64 sources (noise).
func setRows64(n *G.Node, src []float64) {
	switch d := n.Value().Data().(type) {
	case []float32:
		for i, v := range src {
			d[i] = float32(v)
		}
		clear(d[len(src):])
	case []float64:
		k := copy(d, src)
		clear(d[k:])
	}
}

func setScalar(n *G.Node, v float64) error {
	if n.Dtype() == tensor.Float32 {
		return G.Let(n, G.NewF32(float32(v)))
	}
	return G.Let(n, G.NewF64(v))
}

// read returns the value the named output had when it was computed, as float64s.
func (gr *graph) read(name string, dst []float64) []float64 {
	v, ok := gr.outs[gr.out[name]]
	if !ok || *v == nil {
		panic("amortized: reading a node that is not a graph output") // a bug in this package
	}
	return valueFloats(*v, dst)
}

// readRows sets the rows of out to the first len(out) rows, width values
// each, of the named output, as float32s in one new block (each row capped
// at its width, so appending to one cannot write into the next).
func (gr *graph) readRows(name string, out [][]float32, width int) {
	v, ok := gr.outs[gr.out[name]]
	if !ok || *v == nil {
		panic("amortized: reading a node that is not a graph output") // a bug in this package
	}
	block := make([]float32, len(out)*width)
	switch d := (*v).Data().(type) {
	case []float32:
		copy(block, d)
	case []float64:
		for i := range block {
			block[i] = float32(d[i])
		}
	}
	for r := range out {
		out[r] = block[r*width : (r+1)*width : (r+1)*width]
	}
}

// valueFloats returns a value's data (tensor or scalar) as float64s.
func valueFloats(v G.Value, dst []float64) []float64 {
	dst = dst[:0]
	switch d := v.Data().(type) {
	case []float32:
		for _, f := range d {
			dst = append(dst, float64(f))
		}
	case []float64:
		dst = append(dst, d...)
	case float32:
		dst = append(dst, float64(d))
	case float64:
		dst = append(dst, d)
	}
	return dst
}

// tensorValues returns a tensor's data as float64s.
func tensorValues(t tensor.Tensor, dst []float64) []float64 {
	dst = dst[:0]
	switch d := t.Data().(type) {
	case []float32:
		for _, v := range d {
			dst = append(dst, float64(v))
		}
	case []float64:
		dst = append(dst, d...)
	}
	return dst
}

// scalar reads a scalar output.
func (gr *graph) scalar(name string) float64 {
	var buf [1]float64
	return gr.read(name, buf[:0])[0]
}
