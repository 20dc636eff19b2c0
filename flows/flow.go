package flows

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Flow is one invertible map applied row-wise to a batch z of shape (B, L).
type Flow interface {
	// Forward returns f(z), of z's shape, and the per-row log|det df/dz|
	// (a length-B vector node), both in z's graph.
	Forward(z *G.Node) (out, logDet *G.Node, err error)
}

// logEps is added inside every log of a log-determinant whose argument
// can reach 0 (at the constraint boundary, or when a softplus underflows),
// as Pyro does, so the result and its gradient stay finite. It biases the
// log-determinant by at most logEps/|det|.
const logEps = 1e-8

// Compose returns the flow that applies fs in order, f_K o ... o f_1, with
// log-determinant the sum of theirs (the chain rule for Jacobians).
// Compose() is the identity with log-determinant 0.
func Compose(fs ...Flow) Flow { return composition(slices.Clone(fs)) }

type composition []Flow

// Forward runs the steps in order; each run of consecutive fusable steps
// (planar, radial, Householder, Sylvester, and compositions of them), and
// each run of fusable IAF steps on one context, is one graph node forward
// and one backward.
func (c composition) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if _, _, err := batchShape(z); err != nil {
		return nil, nil, err
	}
	out = z
	add := func(y, ld *G.Node) error {
		out = y
		if logDet == nil {
			logDet = ld
			return nil
		}
		var err error
		if logDet, err = G.Add(logDet, ld); err != nil {
			return fmt.Errorf("flows: summing log-determinants: %w", err)
		}
		return nil
	}
	var run []step
	var params [][]*G.Node
	first := 0 // the step number of run[0], for errors
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		y, ld, err := forwardSteps(out, run, params)
		if err != nil {
			return fmt.Errorf("%w (steps %d-%d of %d)", err, first+1, first+len(run), len(c))
		}
		run, params = nil, nil
		return add(y, ld)
	}
	// A run of fusable IAF steps on one context is one node (iafChainOp).
	var iafRun []boundIAF
	iafFirst := 0
	flushIAF := func() error {
		if len(iafRun) == 0 {
			return nil
		}
		y, ld, err := forwardIAFChain(iafRun, out)
		if err != nil {
			return fmt.Errorf("%w (steps %d-%d of %d)", err, iafFirst+1, iafFirst+len(iafRun), len(c))
		}
		iafRun = nil
		return add(y, ld)
	}
	for i, f := range c {
		if bi, ok := f.(boundIAF); ok && bi.fusable() {
			if err := bi.check(out); err != nil {
				return nil, nil, fmt.Errorf("%w (step %d of %d)", err, i+1, len(c))
			}
			if len(iafRun) > 0 && (iafRun[0].h != bi.h || iafRun[0].b != bi.b) {
				if err := flushIAF(); err != nil {
					return nil, nil, err
				}
			}
			if err := flush(); err != nil {
				return nil, nil, err
			}
			if len(iafRun) == 0 {
				iafFirst = i
			}
			iafRun = append(iafRun, bi)
			continue
		}
		if err := flushIAF(); err != nil {
			return nil, nil, err
		}
		if ss, ps, ok := fusableSteps(f); ok {
			// Every step keeps z's shape, so checking each against the
			// input of the run checks it against its own input.
			if err := checkFusable(f, out); err != nil {
				return nil, nil, fmt.Errorf("%w (step %d of %d)", err, i+1, len(c))
			}
			if len(run) == 0 {
				first = i
			}
			run, params = append(run, ss...), append(params, ps...)
			continue
		}
		if err := flush(); err != nil {
			return nil, nil, err
		}
		y, ld, err := f.Forward(out)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (step %d of %d)", err, i+1, len(c))
		}
		if err := add(y, ld); err != nil {
			return nil, nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	if err := flushIAF(); err != nil {
		return nil, nil, err
	}
	if logDet == nil {
		// A constant: gorgonia merges unnamed inputs of equal shape, which
		// could alias a zero input with a caller's node.
		B := z.Shape()[0]
		zeros := tensor.New(tensor.Of(z.Dtype()), tensor.WithShape(B))
		logDet = G.NewConstant(zeros, G.In(z.Graph()), G.WithName(fmt.Sprintf("flows.zeros(%v,%d)", z.Dtype(), B)))
	}
	return out, logDet, nil
}

// fusableSteps returns f's steps when f is made of fusable steps only.
func fusableSteps(f Flow) (ss []step, params [][]*G.Node, ok bool) {
	switch f := f.(type) {
	case fusable:
		ss, params = f.steps()
		return ss, params, true
	case composition:
		for _, g := range f {
			s, p, ok := fusableSteps(g)
			if !ok {
				return nil, nil, false
			}
			ss, params = append(ss, s...), append(params, p...)
		}
		return ss, params, true
	}
	return nil, nil, false
}

// checkFusable reports the error f.Forward would for input z's shape.
func checkFusable(f Flow, z *G.Node) error {
	switch f := f.(type) {
	case fusable:
		return f.check(z)
	case composition:
		for i, g := range f {
			if err := checkFusable(g, z); err != nil {
				return fmt.Errorf("%w (step %d of %d)", err, i+1, len(f))
			}
		}
	}
	return nil
}

// batchShape returns B and L of a batch node of shape (B, L).
func batchShape(z *G.Node) (B, L int, err error) {
	if z == nil || z.Shape().Dims() != 2 {
		return 0, 0, fmt.Errorf("flows: z must be a (B, L) matrix node, got %v", shapeOf(z))
	}
	return z.Shape()[0], z.Shape()[1], nil
}

// checkParam reports whether n has the given shape, naming it in the error.
func checkParam(name string, n *G.Node, shape ...int) error {
	if n == nil || !n.Shape().Eq(tensor.Shape(shape)) {
		return fmt.Errorf("flows: %s has shape %v, want %v", name, shapeOf(n), tensor.Shape(shape))
	}
	return nil
}

func shapeOf(n *G.Node) any {
	if n == nil {
		return "nil"
	}
	return n.Shape()
}

// must turns gorgonia's construction errors into panics that catch turns
// back into an error: construction fails only on shape or dtype bugs, and
// the formulas read better without an if after every operation.
func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(buildError{err})
	}
	return n
}

type buildError struct{ err error }

// catch recovers a panic from must into *err, prefixed by what.
func catch(err *error, what string) {
	r := recover()
	if r == nil {
		return
	}
	be, ok := r.(buildError)
	if !ok {
		panic(r)
	}
	*err = fmt.Errorf("flows: %s: %w", what, be.err)
}

func scalar(dt tensor.Dtype, v float64) *G.Node {
	if dt == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// rowDot is sum_j a_ij b_ij, a length-B vector.
func rowDot(a, b *G.Node) *G.Node { return must(G.Sum(must(G.HadamardProd(a, b)), 1)) }

// scaleRows multiplies row i of the (B, L) matrix m by v_i.
func scaleRows(m, v *G.Node) *G.Node { return must(G.BroadcastHadamardProd(m, v, nil, []byte{1})) }
