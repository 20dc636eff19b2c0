package amortized

import (
	"fmt"
	"math"

	"github.com/govae/govae/internal/tape"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graphKind says which computation a graph holds.
type graphKind int

const (
	kindTrain  graphKind = iota // x, eps, w, beta -> loss and its gradient
	kindEval                    // x, eps -> per-row reconstruction term, KL, log weights, mean of p(x|z)
	kindEncode                  // x -> mean and log-variance of q(z|x)
	kindDecode                  // z -> mean of p(x|z)
	kindLogW                    // x, q's parameters, eps -> z, log p(x|z), log importance weight
)

// graph is one compiled computation for a fixed batch size. Inputs are bound
// once to tensors whose backing slices are rewritten before every run, so a
// run allocates nothing of ours.
type graph struct {
	kind  graphKind
	batch int
	g     *G.ExprGraph
	bind  *nets.Binding
	vm    *tape.Machine // run on the caller's goroutine (see internal/tape)

	x, eps, z, w, beta *G.Node // inputs (nil where unused)
	// Inputs of k-sample training graphs (k > 1): rep is the (Bk x B)
	// 0/1 matrix that repeats each example's q parameters k times, xk the
	// examples repeated, wk each sample's weight w_i/k. Score-function
	// graphs take z itself and each sample's advantage.
	rep, xk, wk, adv *G.Node
	// kindLogW inputs q's parameters per row: the encoder's heads, in
	// the model's head order.
	qIn []*G.Node
	// muIn and logvarIn are qIn[0] and qIn[1]: every family's mean and
	// log-variance (of a flow's base; of the scaled noise for fullcov).
	muIn, logvarIn *G.Node

	heads      []*G.Node // the encoder's heads: q(z|x)'s parameters (kindEncode)
	mu         *G.Node   // mean of q(z|x) (of the base q0 for flows)
	logvar     *G.Node   // the logvar head: q(z|x)'s (diag), q0's (flows), the diagonal's (fullcov); kindEncode
	point      *G.Node   // Encode's point summary of q(z|x) (kindEncode)
	mean       *G.Node   // mean of p(x|z)
	recon      *G.Node   // log p(x|z) per row
	kl         *G.Node   // KL(q(z|x) || p(z)) per row: analytic, or for flows log q(z|x) - log p(z) at the sampled z
	logq, logp *G.Node   // log q(z|x) and log p(z) per row at the sampled z
	zOut       *G.Node   // the sampled z (kindLogW)
	logw       *G.Node   // log p(x|z) + log p(z) - log q(z|x) per row (kindLogW)
	loss       *G.Node   // training loss (scalar)
	lossRecon  *G.Node   // weighted mean of recon (scalar), for reporting
	lossKL     *G.Node   // weighted mean of kl (scalar)
	bound      *G.Node   // the objective's estimate per example, weighted mean (scalar)
	// gradNodes are the loss's gradient with respect to each parameter, in
	// the binding's order (kindTrain).
	gradNodes []*G.Node

	// outs holds copies of the nodes read from Go, taken by gorgonia's Read
	// op as each is computed: the tape machine reuses buffers in place, so
	// an intermediate node's own value may be overwritten by the end of a run.
	outs map[*G.Node]*G.Value
}

// builder carries the graph being built and small helpers bound to its dtype.
type builder struct {
	m      *Model
	g      *G.ExprGraph
	b      *nets.Binding
	dt     tensor.Dtype
	consts map[string]*G.Node // constant matrices by name (constMatrix)
}

func (bd *builder) scalar(v float64) *G.Node {
	if bd.dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

func (bd *builder) input(name string, shape ...int) *G.Node {
	var n *G.Node
	switch len(shape) {
	case 0:
		n = G.NewScalar(bd.g, bd.dt, G.WithName(name))
	case 1:
		n = G.NewVector(bd.g, bd.dt, G.WithShape(shape...), G.WithName(name))
	default:
		n = G.NewMatrix(bd.g, bd.dt, G.WithShape(shape...), G.WithName(name))
	}
	var v G.Value
	if len(shape) == 0 {
		if bd.dt == tensor.Float32 {
			v = G.NewF32(0)
		} else {
			v = G.NewF64(0)
		}
	} else {
		v = tensor.New(tensor.Of(bd.dt), tensor.WithShape(shape...))
	}
	if err := G.Let(n, v); err != nil {
		panic(err) // shapes and dtypes are ours; a mismatch is a bug
	}
	return n
}

// must turns gorgonia's construction errors into panics; buildGraph
// recovers them into an error. Construction only fails on shape or dtype
// bugs in this package, never on user data.
func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(buildError{err})
	}
	return n
}

type buildError struct{ err error }

// decoderOut is p(x|z)'s parameters: logits (Bernoulli) or mean and variance (Gaussian).
type decoderOut struct {
	logits   *G.Node
	mean     *G.Node
	variance *G.Node
}

func (bd *builder) decode(z *G.Node) decoderOut {
	m := bd.m
	h := must(m.decTrunk.Forward(bd.b, z))
	if m.cfg.Likelihood == Bernoulli {
		// The mean sigmoid(l) is added only where it is read (meanOf): the
		// tape machine runs every node, and training never needs it.
		return decoderOut{logits: must(m.decOut.Forward(bd.b, h))}
	}
	mean := must(G.Sigmoid(must(m.decOut.Forward(bd.b, h))))
	raw := must(m.decVar.Forward(bd.b, h))
	variance := must(G.Add(must(G.Softplus(raw)), bd.scalar(m.cfg.GaussianMinVar)))
	return decoderOut{mean: mean, variance: variance}
}

// meanOf is the mean of p(x|z): sigmoid(l) for Bernoulli logits.
func (bd *builder) meanOf(d decoderOut) *G.Node {
	if d.mean == nil {
		d.mean = must(G.Sigmoid(d.logits))
	}
	return d.mean
}

// logLikelihood is log p(x|z) per row, summed over pixels.
//
// Bernoulli with logits l: x l - softplus(l), which never forms log(sigmoid)
// and so stays finite for any l. Gaussian: -(log 2 pi + log s2 + (x-m)^2/s2)/2.
func (bd *builder) logLikelihood(d decoderOut, x *G.Node) *G.Node {
	if d.logits != nil {
		return must(nets.BernoulliLogLik(x, d.logits))
	}
	diff := must(G.Sub(x, d.mean))
	quad := must(G.HadamardDiv(must(G.Square(diff)), d.variance))
	per := must(G.Add(must(G.Log(d.variance)), quad))
	per = must(G.Add(per, bd.scalar(math.Log(2*math.Pi))))
	per = must(G.Mul(per, bd.scalar(-0.5)))
	return must(G.Sum(per, 1))
}

// klDiag is KL(N(mu, e^lv) || N(0, I)) per row and per dimension:
// (mu^2 + e^lv - 1 - lv) / 2.
func (bd *builder) klDiag(mu, logvar *G.Node) *G.Node {
	t := must(G.Add(must(G.Square(mu)), must(G.Exp(logvar))))
	t = must(G.Sub(t, must(G.Add(logvar, bd.scalar(1)))))
	return must(G.Mul(t, bd.scalar(0.5)))
}

// logQEps is log q(z|x) per row for z = mu + exp(lv/2) eps, by the change of
// variables: sum_j log N(eps_j; 0, 1) - lv_j/2.
func (bd *builder) logQEps(eps, logvar *G.Node) *G.Node {
	halfLV := must(G.Mul(must(G.Sum(logvar, 1)), bd.scalar(0.5)))
	return must(G.Sub(bd.logStdNormal(eps), halfLV))
}

// logQAt is log q(z|x) per row at a given z: logQEps at the noise that
// produces z, eps = (z - mu) exp(-lv/2).
func (bd *builder) logQAt(z, mu, logvar *G.Node) *G.Node {
	return bd.logQOffset(must(G.Sub(z, mu)), logvar)
}

// logQOffset is logQEps at eps = u exp(-lv/2): log q of the point whose
// offset from the mean is u = exp(lv/2) eps.
func (bd *builder) logQOffset(u, logvar *G.Node) *G.Node {
	invStd := must(G.Exp(must(G.Mul(logvar, bd.scalar(-0.5)))))
	return bd.logQEps(must(G.HadamardProd(u, invStd)), logvar)
}

// logMeanExp is log (1/k) sum_j exp(a_ij) per row of a (B x k), computed
// stably: the row maximum is subtracted before exponentiating.
func (bd *builder) logMeanExp(a *G.Node, k int) *G.Node {
	mx := must(G.Max(a, 1))
	shifted := must(G.BroadcastSub(a, mx, nil, []byte{1}))
	lse := must(G.Add(must(G.Log(must(G.Sum(must(G.Exp(shifted)), 1)))), mx))
	return must(G.Sub(lse, bd.scalar(math.Log(float64(k)))))
}

// trainGraph adds the training loss and its gradient for opts' objective,
// number of samples k and estimator.
//
// With B examples and k samples each, rows of the sample-level tensors are
// ordered example-major: row i*k + j is sample j of example i.
func (bd *builder) trainGraph(gr *graph, opts TrainOptions) error {
	B, D, L, k := gr.batch, bd.m.cfg.DataDim, bd.m.cfg.Latent, opts.K
	n := B * k
	gr.x = bd.input("x", B, D)
	gr.w = bd.input("w", B)
	gr.beta = bd.input("beta")
	heads := bd.encodeHeads(gr.x)
	gr.mu = heads[0]
	qB := bd.posterior(heads) // one row per example
	q, xk := qB, gr.x         // one row per sample
	gr.wk = gr.w
	if k > 1 {
		gr.rep = bd.input("rep", n, B)
		gr.xk = bd.input("xk", n, D)
		gr.wk = bd.input("wk", n)
		rh := make([]*G.Node, len(heads))
		for i, h := range heads {
			rh[i] = must(G.Mul(gr.rep, h))
		}
		q, xk = bd.posterior(rh), gr.xk
	}
	var z, logq *G.Node
	if opts.Estimator == EstimatorScore {
		// z is sampled outside the graph: no gradient flows through it.
		gr.z = bd.input("z", n, L)
		gr.adv = bd.input("adv", n)
		z = gr.z
	} else {
		gr.eps = bd.input("eps", n, L)
		z, logq = q.sample(gr.eps)
	}
	gr.recon = bd.logLikelihood(bd.decode(z), xk)
	// Weighted sums are means over the real rows (and samples).
	gr.lossRecon = must(G.Mul(gr.wk, gr.recon))
	var klTerm *G.Node
	switch {
	case qB.spec.family == Diagonal:
		klDims := bd.klDiag(qB.mu, qB.logvar)
		gr.kl = must(G.Sum(klDims, 1))
		klPerDim := must(G.Mul(must(G.Transpose(klDims)), gr.w))
		gr.lossKL = must(G.Sum(klPerDim))
		klTerm = gr.lossKL
		if opts.FreeBits > 0 {
			// Free bits (Kingma et al. 2016): each dimension's batch-mean KL
			// counts as at least lambda, so no gradient pushes it below.
			lam := bd.scalar(opts.FreeBits)
			klTerm = must(G.Sum(must(G.Add(must(G.Rectify(must(G.Sub(klPerDim, lam)))), lam))))
		}
	case qB.analyticKL():
		gr.kl = qB.klRow()
		gr.lossKL = must(G.Mul(gr.w, gr.kl))
		klTerm = gr.lossKL
	default:
		// No closed form: the KL is estimated at each sample,
		// log q(z|x) - log p(z) (Rezende & Mohamed 2015, eq. 15).
		gr.kl = must(G.Sub(logq, bd.logStdNormal(z)))
		gr.lossKL = must(G.Mul(gr.wk, gr.kl))
		klTerm = gr.lossKL
	}
	switch {
	case opts.Objective == ObjectiveIWAE:
		// log w = log p(x|z) + log p(z) - log q(z|x); the bound is the
		// log of the mean weight (Burda et al. 2015).
		logw := must(G.Sub(must(G.Add(gr.recon, bd.logStdNormal(z))), logq))
		perEx := bd.logMeanExp(must(G.Reshape(logw, []int{B, k})), k)
		gr.bound = must(G.Mul(gr.w, perEx))
		gr.loss = must(G.Neg(gr.bound))
	case opts.Estimator == EstimatorScore:
		// Surrogate whose encoder gradient is E[(log p(x|z) - b) grad log q(z|x)]
		// (the score function), plus the exact gradient of the analytic KL.
		// adv is an input, so the decoder's gradient comes from recon alone.
		gr.logq = q.logQAt(z)
		score := must(G.Mul(gr.wk, must(G.HadamardProd(gr.adv, gr.logq))))
		gr.bound = must(G.Sub(gr.lossRecon, gr.lossKL))
		gr.loss = must(G.Sub(must(G.Sub(must(G.Mul(gr.beta, klTerm)), gr.lossRecon)), score))
	default:
		gr.bound = must(G.Sub(gr.lossRecon, gr.lossKL))
		gr.loss = must(G.Sub(must(G.Mul(gr.beta, klTerm)), gr.lossRecon))
	}
	grads, err := G.Grad(gr.loss, bd.b.Nodes()...)
	if err != nil {
		return fmt.Errorf("amortized: differentiating the loss: %w", err)
	}
	// The gradients are read from these nodes' values after a run, rather
	// than added into dual values (gorgonia's way, a pass over every weight
	// in the slow tensor loop, plus zeroing). That is only sound if nothing
	// else reads a gradient node: an op that did could overwrite its value
	// in place. Every parameter enters through nets' fused ops or a
	// mask product, whose gradients feed nothing.
	for i, gn := range grads {
		if gr.g.To(gn.ID()).Len() > 0 {
			return fmt.Errorf("amortized: the gradient of %s feeds other nodes", bd.b.Nodes()[i].Name())
		}
	}
	gr.gradNodes = grads
	return nil
}

// reparameterize is z = mu + exp(lv/2) * eps.
func (bd *builder) reparameterize(mu, logvar, eps *G.Node) *G.Node {
	return must(G.Add(mu, bd.scaledNoise(logvar, eps)))
}

// scaledNoise is exp(lv/2) * eps.
func (bd *builder) scaledNoise(logvar, eps *G.Node) *G.Node {
	std := must(G.Exp(must(G.Mul(logvar, bd.scalar(0.5)))))
	return must(G.HadamardProd(std, eps))
}

// logStdNormal is sum_j log N(v_j; 0, 1) per row.
func (bd *builder) logStdNormal(v *G.Node) *G.Node {
	s := must(G.Sum(must(G.Square(v)), 1))
	d := float64(bd.m.cfg.Latent)
	return must(G.Mul(must(G.Add(s, bd.scalar(d*math.Log(2*math.Pi)))), bd.scalar(-0.5)))
}

// buildGraph compiles a graph of the given kind and batch size on the
// model's parameters. opts only matters for training graphs.
func (m *Model) buildGraph(kind graphKind, batch int, opts TrainOptions) (*graph, error) {
	return m.buildGraphOn(m.params, kind, batch, opts)
}

// buildGraphOn is buildGraph bound to ps, a store with the model's parameter
// names. Graphs that run concurrently need their own copies: gorgonia sets
// the engine of bound tensors when it compiles and may reshape them in place
// while it runs, so two graphs sharing tensors race.
func (m *Model) buildGraphOn(ps *nets.Params, kind graphKind, batch int, opts TrainOptions) (gr *graph, err error) {
	defer func() {
		if r := recover(); r != nil {
			be, ok := r.(buildError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("amortized: building graph: %w", be.err)
		}
	}()
	g := G.NewGraph()
	bd := &builder{m: m, g: g, b: ps.Bind(g), dt: ps.Dtype()}
	gr = &graph{kind: kind, batch: batch, g: g, bind: bd.b}
	D, L := m.cfg.DataDim, m.cfg.Latent

	switch kind {
	case kindDecode:
		gr.z = bd.input("z", batch, L)
		gr.mean = bd.meanOf(bd.decode(gr.z))
	case kindEncode:
		gr.x = bd.input("x", batch, D)
		gr.heads = bd.encodeHeads(gr.x)
		q := bd.posterior(gr.heads)
		gr.mu, gr.logvar, gr.point = q.mu, q.logvar, q.point()
	case kindEval:
		gr.x = bd.input("x", batch, D)
		gr.eps = bd.input("eps", batch, L)
		q := bd.posterior(bd.encodeHeads(gr.x))
		gr.mu = q.mu
		z, logq := q.sample(gr.eps)
		dec := bd.decode(z)
		gr.recon = bd.logLikelihood(dec, gr.x)
		gr.mean = bd.meanOf(dec)
		gr.logq, gr.logp = logq, bd.logStdNormal(z)
		if q.analyticKL() {
			gr.kl = q.klRow()
		} else {
			gr.kl = must(G.Sub(gr.logq, gr.logp))
		}
	case kindLogW:
		gr.x = bd.input("x", batch, D)
		for _, hd := range m.post.heads(L) {
			gr.qIn = append(gr.qIn, bd.input("q."+hd.name, batch, hd.width))
		}
		gr.muIn, gr.logvarIn = gr.qIn[0], gr.qIn[1]
		gr.eps = bd.input("eps", batch, L)
		z, logq := bd.posterior(gr.qIn).sample(gr.eps)
		gr.zOut = z
		gr.recon = bd.logLikelihood(bd.decode(gr.zOut), gr.x)
		lpz := bd.logStdNormal(gr.zOut)
		gr.logw = must(G.Sub(must(G.Add(gr.recon, lpz)), logq))
	case kindTrain:
		if err := bd.trainGraph(gr, opts); err != nil {
			return nil, err
		}
	}
	gr.outs = map[*G.Node]*G.Value{}
	for _, n := range append([]*G.Node{gr.mu, gr.point, gr.mean, gr.recon, gr.kl, gr.logq, gr.logp,
		gr.zOut, gr.logw, gr.loss, gr.lossRecon, gr.lossKL, gr.bound}, gr.heads...) {
		if _, dup := gr.outs[n]; n != nil && !dup {
			v := new(G.Value)
			G.Read(n, v)
			gr.outs[n] = v
		}
	}
	if gr.vm, err = tape.New(G.NewTapeMachine(g)); err != nil {
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

// read returns the value an output node had when it was computed, as float64s.
func (gr *graph) read(n *G.Node, dst []float64) []float64 {
	v, ok := gr.outs[n]
	if !ok || *v == nil {
		panic("amortized: reading a node that is not a graph output") // a bug in this package
	}
	return valueFloats(*v, dst)
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
func (gr *graph) scalar(n *G.Node) float64 {
	var buf [1]float64
	return gr.read(n, buf[:0])[0]
}
