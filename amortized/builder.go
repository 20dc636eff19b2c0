package amortized

import (
	"fmt"
	"math"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Builder is one graph under construction on a model's parameters, handed
// to the parts so that they can add their nodes: the parameter binding,
// the dtype, constants and the model's own encoder.
type Builder struct {
	m      *Model
	g      *G.ExprGraph
	b      *nets.Binding
	dt     tensor.Dtype
	consts map[string]*G.Node // constant matrices by name (Const)
	prior  BoundPrior         // bound on first use
	// evalOnly: the graph is never differentiated, so parts may use
	// forward-only fused ops (see bernoulliDecoded.LogProb).
	evalOnly bool
	// fixedW: the weights keep their values for the graph's life, so ops
	// may prepare them once (see nets.FuseBernoulliLogLik).
	fixedW bool
	// groupHeads: the encoder's linear heads on data share one node for
	// their input gradient (nets.HeadGroup); groups lists them, for
	// trainGraph to check that every head was differentiated.
	groupHeads bool
	groups     []nets.HeadGroup
}

// headGroup starts a nets.HeadGroup of n heads in a training graph (which
// checks that it is complete) and is nil in others.
func (bd *Builder) headGroup(n int) *nets.HeadGroup {
	if !bd.groupHeads {
		return nil
	}
	hg := nets.NewHeadGroup(n)
	bd.groups = append(bd.groups, hg)
	return &hg
}

// Graph is the graph being built.
func (bd *Builder) Graph() *G.ExprGraph { return bd.g }

// Binding gives the graph's nodes of the model's parameters (by name).
func (bd *Builder) Binding() *nets.Binding { return bd.b }

// Dtype is the graph's element type.
func (bd *Builder) Dtype() tensor.Dtype { return bd.dt }

// Config is the model's normalized configuration.
func (bd *Builder) Config() Config { return bd.m.cfg }

// Encode runs the model's encoder on rows x (DataDim wide) in this graph
// and returns its heads, for a part that needs the encoder (a VampPrior
// evaluates q at learned pseudo-inputs).
func (bd *Builder) Encode(x *G.Node) HeadValues { return bd.m.encoder.Forward(bd, x, false) }

// encodeData is Encode for x that is data: no gradient with respect to x.
func (bd *Builder) encodeData(x *G.Node) HeadValues { return bd.m.encoder.Forward(bd, x, true) }

// Family is the model's posterior family, to bind q on heads from Encode.
func (bd *Builder) Family() Family { return bd.m.family }

// Prior is the model's prior, bound in this graph.
func (bd *Builder) Prior() BoundPrior {
	if bd.prior == nil {
		bd.prior = bd.m.prior.Bind(bd)
	}
	return bd.prior
}

// Scalar is a constant of the graph's dtype.
func (bd *Builder) Scalar(v float64) *G.Node {
	if bd.dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// Const is a named constant matrix (rows x cols, row-major v) of the
// graph's dtype, made once per graph. The name keeps gorgonia from merging
// it with another constant of that shape.
func (bd *Builder) Const(name string, v []float64, rows, cols int) *G.Node {
	if n, ok := bd.consts[name]; ok {
		return n
	}
	if bd.consts == nil {
		bd.consts = map[string]*G.Node{}
	}
	var t tensor.Tensor
	if bd.dt == tensor.Float32 {
		t = tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(toFloat32(v)))
	} else {
		t = tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(append([]float64(nil), v...)))
	}
	bd.consts[name] = G.NewConstant(t, G.WithName(name))
	return bd.consts[name]
}

// Fail abandons the graph with err (a part's construction bug).
func (bd *Builder) Fail(err error) { panic(buildError{err}) }

// Must returns n, or abandons the graph being built with err: gorgonia's
// construction errors are shape or dtype bugs in a part, never bad user
// data, and the graph's constructor returns them as its error.
func Must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(buildError{err})
	}
	return n
}

// must is Must, for this package's own code.
func must(n *G.Node, err error) *G.Node { return Must(n, err) }

type buildError struct{ err error }

// recoverBuild turns a part's panic(buildError) into *err.
func recoverBuild(err *error, what string) {
	if r := recover(); r != nil {
		be, ok := r.(buildError)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("amortized: building %s: %w", what, be.err)
	}
}

func (bd *Builder) input(name string, shape ...int) *G.Node {
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

// Vec turns a (B, 1) node into a length-B vector.
func Vec(n *G.Node) *G.Node { return Must(G.Reshape(n, tensor.Shape{n.Shape()[0]})) }

// LogStdNormal is sum_j log N(v_j; 0, 1) per row of v.
func (bd *Builder) LogStdNormal(v *G.Node) *G.Node {
	s := must(G.Sum(must(G.Square(v)), 1))
	d := float64(v.Shape()[1])
	return must(G.Mul(must(G.Add(s, bd.Scalar(d*math.Log(2*math.Pi)))), bd.Scalar(-0.5)))
}

// logMeanExp is log (1/k) sum_j exp(a_ij) per row of a (B x k), computed
// stably: the row maximum is subtracted before exponentiating.
func (bd *Builder) logMeanExp(a *G.Node, k int) *G.Node {
	mx := must(G.Max(a, 1))
	shifted := must(G.BroadcastSub(a, mx, nil, []byte{1}))
	lse := must(G.Add(must(G.Log(must(G.Sum(must(G.Exp(shifted)), 1)))), mx))
	return must(G.Sub(lse, bd.Scalar(math.Log(float64(k)))))
}
