package amortized

import (
	"fmt"
	"math"

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
)

// graph is one compiled computation for a fixed batch size. Inputs are bound
// once to tensors whose backing slices are rewritten before every run, so a
// run allocates nothing of ours.
type graph struct {
	kind  graphKind
	batch int
	g     *G.ExprGraph
	bind  *nets.Binding
	vm    G.VM

	x, eps, z, w, beta *G.Node // inputs (nil where unused)

	mu, logvar *G.Node // q(z|x)
	mean       *G.Node // mean of p(x|z)
	recon      *G.Node // log p(x|z) per row
	kl         *G.Node // KL(q(z|x) || p(z)) per row, analytic
	logq, logp *G.Node // log q(z|x) and log p(z) per row at the sampled z
	loss       *G.Node // training loss (scalar)
	lossRecon  *G.Node // weighted mean of recon (scalar), for reporting
	lossKL     *G.Node // weighted mean of kl (scalar)
}

// builder carries the graph being built and small helpers bound to its dtype.
type builder struct {
	m  *Model
	g  *G.ExprGraph
	b  *nets.Binding
	dt tensor.Dtype
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

// encode adds q(z|x)'s parameters for a batch x.
func (bd *builder) encode(x *G.Node) (mu, logvar *G.Node) {
	m := bd.m
	h := must(m.encTrunk.Forward(bd.b, x))
	mu = must(m.encMean.Forward(bd.b, h))
	logvar = must(m.encLogVar.Forward(bd.b, h))
	return mu, logvar
}

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
		l := must(m.decOut.Forward(bd.b, h))
		return decoderOut{logits: l, mean: must(G.Sigmoid(l))}
	}
	mean := must(G.Sigmoid(must(m.decOut.Forward(bd.b, h))))
	raw := must(m.decVar.Forward(bd.b, h))
	variance := must(G.Add(must(G.Softplus(raw)), bd.scalar(m.cfg.GaussianMinVar)))
	return decoderOut{mean: mean, variance: variance}
}

// logLikelihood is log p(x|z) per row, summed over pixels.
//
// Bernoulli with logits l: x l - softplus(l), which never forms log(sigmoid)
// and so stays finite for any l. Gaussian: -(log 2 pi + log s2 + (x-m)^2/s2)/2.
func (bd *builder) logLikelihood(d decoderOut, x *G.Node) *G.Node {
	var per *G.Node
	if d.logits != nil {
		per = must(G.Sub(must(G.HadamardProd(x, d.logits)), must(G.Softplus(d.logits))))
	} else {
		diff := must(G.Sub(x, d.mean))
		quad := must(G.HadamardDiv(must(G.Square(diff)), d.variance))
		per = must(G.Add(must(G.Log(d.variance)), quad))
		per = must(G.Add(per, bd.scalar(math.Log(2*math.Pi))))
		per = must(G.Mul(per, bd.scalar(-0.5)))
	}
	return must(G.Sum(per, 1))
}

// klDiag is KL(N(mu, e^lv) || N(0, I)) per row and per dimension:
// (mu^2 + e^lv - 1 - lv) / 2.
func (bd *builder) klDiag(mu, logvar *G.Node) *G.Node {
	t := must(G.Add(must(G.Square(mu)), must(G.Exp(logvar))))
	t = must(G.Sub(t, must(G.Add(logvar, bd.scalar(1)))))
	return must(G.Mul(t, bd.scalar(0.5)))
}

// reparameterize is z = mu + exp(lv/2) * eps.
func (bd *builder) reparameterize(mu, logvar, eps *G.Node) *G.Node {
	std := must(G.Exp(must(G.Mul(logvar, bd.scalar(0.5)))))
	return must(G.Add(mu, must(G.HadamardProd(std, eps))))
}

// logStdNormal is sum_j log N(v_j; 0, 1) per row.
func (bd *builder) logStdNormal(v *G.Node) *G.Node {
	s := must(G.Sum(must(G.Square(v)), 1))
	d := float64(bd.m.cfg.Latent)
	return must(G.Mul(must(G.Add(s, bd.scalar(d*math.Log(2*math.Pi)))), bd.scalar(-0.5)))
}

// buildGraph compiles a graph of the given kind and batch size. opts only
// matters for training graphs.
func (m *Model) buildGraph(kind graphKind, batch int, opts TrainOptions) (gr *graph, err error) {
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
	bd := &builder{m: m, g: g, b: m.params.Bind(g), dt: m.params.Dtype()}
	gr = &graph{kind: kind, batch: batch, g: g, bind: bd.b}
	D, L := m.cfg.DataDim, m.cfg.Latent

	switch kind {
	case kindDecode:
		gr.z = bd.input("z", batch, L)
		gr.mean = bd.decode(gr.z).mean
	case kindEncode:
		gr.x = bd.input("x", batch, D)
		gr.mu, gr.logvar = bd.encode(gr.x)
	case kindEval, kindTrain:
		gr.x = bd.input("x", batch, D)
		gr.eps = bd.input("eps", batch, L)
		gr.mu, gr.logvar = bd.encode(gr.x)
		z := bd.reparameterize(gr.mu, gr.logvar, gr.eps)
		dec := bd.decode(z)
		gr.recon = bd.logLikelihood(dec, gr.x)
		klDims := bd.klDiag(gr.mu, gr.logvar)
		gr.kl = must(G.Sum(klDims, 1))
		if kind == kindEval {
			gr.mean = dec.mean
			// log q(z|x) = sum_j log N(eps_j; 0, 1) - lv_j/2 (change of variables).
			halfLV := must(G.Mul(must(G.Sum(gr.logvar, 1)), bd.scalar(0.5)))
			gr.logq = must(G.Sub(bd.logStdNormal(gr.eps), halfLV))
			gr.logp = bd.logStdNormal(z)
			break
		}
		// w holds 1/n for the n real rows of a batch and 0 for padding, so
		// sums against it are means over the real rows.
		gr.w = bd.input("w", batch)
		gr.beta = bd.input("beta")
		gr.lossRecon = must(G.Mul(gr.w, gr.recon)) // inner product
		klPerDim := must(G.Mul(must(G.Transpose(klDims)), gr.w))
		gr.lossKL = must(G.Sum(klPerDim))
		klTerm := gr.lossKL
		if opts.FreeBits > 0 {
			// Free bits (Kingma et al. 2016): each dimension's batch-mean KL
			// counts as at least lambda, so no gradient pushes it below.
			lam := bd.scalar(opts.FreeBits)
			clamped := must(G.Add(must(G.Rectify(must(G.Sub(klPerDim, lam)))), lam))
			klTerm = must(G.Sum(clamped))
		}
		gr.loss = must(G.Sub(must(G.Mul(gr.beta, klTerm)), gr.lossRecon))
		if _, err := G.Grad(gr.loss, bd.b.Nodes()...); err != nil {
			return nil, fmt.Errorf("amortized: differentiating the loss: %w", err)
		}
	}
	if kind == kindTrain {
		gr.vm = G.NewTapeMachine(g, G.BindDualValues(bd.b.Nodes()...))
	} else {
		gr.vm = G.NewTapeMachine(g)
	}
	return gr, nil
}

// run executes the graph once on its current inputs.
func (gr *graph) run() error {
	defer gr.vm.Reset()
	return gr.vm.RunAll()
}

func (gr *graph) close() { gr.vm.Close() }

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

// values returns a node's current value as float64s (a copy for float32).
func values(n *G.Node, dst []float64) []float64 {
	dst = dst[:0]
	switch d := n.Value().Data().(type) {
	case []float32:
		for _, v := range d {
			dst = append(dst, float64(v))
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

func scalarValue(n *G.Node) float64 {
	var buf [1]float64
	return values(n, buf[:0])[0]
}
