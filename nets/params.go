package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/govae/govae/internal/kernels/simd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one named trainable tensor.
type Param struct {
	Name  string
	Shape []int
	// FanIn is the number of inputs feeding each output unit; initializers
	// scale by it.
	FanIn int
	Value *tensor.Dense
}

// Len is the number of scalars in p.
func (p *Param) Len() int { return p.Value.Shape().TotalSize() }

// Float32s returns p's backing data when the dtype is float32, else nil.
func (p *Param) Float32s() []float32 {
	v, _ := p.Value.Data().([]float32)
	return v
}

// Float64s returns p's backing data when the dtype is float64, else nil.
func (p *Param) Float64s() []float64 {
	v, _ := p.Value.Data().([]float64)
	return v
}

// Params is an ordered set of named parameters of one dtype.
type Params struct {
	dtype  tensor.Dtype
	list   []*Param
	byName map[string]*Param
	// A counting store (NewCounter) allocates no values: it adds up the
	// scalars of every parameter defined, up to limit.
	counting     bool
	total, limit int64
}

// NewCounter returns a store that allocates nothing: New records each
// parameter's name and shape (Value stays nil) and counts its scalars, and
// fails once the count would exceed limit. Defining a model into it gives
// its size before anything is allocated for it.
func NewCounter(dt tensor.Dtype, limit int64) (*Params, error) {
	ps, err := NewParams(dt)
	if err != nil {
		return nil, err
	}
	ps.counting, ps.limit = true, limit
	return ps, nil
}

// Counting reports whether ps is a counting store (see NewCounter).
func (ps *Params) Counting() bool { return ps.counting }

// ErrTooMany is returned by a counting store's New past its limit.
var ErrTooMany = fmt.Errorf("nets: too many parameters")

// NewParams returns an empty store for tensors of dtype dt (Float32 or Float64).
func NewParams(dt tensor.Dtype) (*Params, error) {
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("nets: dtype %v, want float32 or float64", dt)
	}
	return &Params{dtype: dt, byName: map[string]*Param{}}, nil
}

// Dtype is the element type of every parameter.
func (ps *Params) Dtype() tensor.Dtype { return ps.dtype }

// New adds a zero-filled parameter. Names must be unique and non-empty.
func (ps *Params) New(name string, fanIn int, shape ...int) (*Param, error) {
	if name == "" || strings.ContainsAny(name, " \t\n\"") {
		return nil, fmt.Errorf("nets: invalid parameter name %q", name)
	}
	if _, dup := ps.byName[name]; dup {
		return nil, fmt.Errorf("nets: parameter %q defined twice", name)
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("nets: parameter %q: shape %v has a non-positive size", name, shape)
		}
	}
	p := &Param{Name: name, Shape: append([]int(nil), shape...), FanIn: fanIn}
	if ps.counting {
		n := int64(1)
		for _, d := range shape {
			if n > ps.limit/int64(d) {
				return nil, fmt.Errorf("%w: %q of shape %v takes the count past %d", ErrTooMany, name, shape, ps.limit)
			}
			n *= int64(d)
		}
		if ps.total > ps.limit-n {
			return nil, fmt.Errorf("%w: %q of shape %v takes the count past %d", ErrTooMany, name, shape, ps.limit)
		}
		ps.total += n
	} else {
		p.Value = tensor.New(tensor.Of(ps.dtype), tensor.WithShape(shape...))
	}
	ps.list = append(ps.list, p)
	ps.byName[name] = p
	return p, nil
}

// All returns the parameters in creation order (the order of checkpoints).
func (ps *Params) All() []*Param { return ps.list }

// Get returns the named parameter, or nil.
func (ps *Params) Get(name string) *Param { return ps.byName[name] }

// Count is the total number of scalars.
func (ps *Params) Count() int {
	if ps.counting {
		return int(ps.total)
	}
	n := 0
	for _, p := range ps.list {
		n += p.Len()
	}
	return n
}

// InitUniform fills every parameter with U(-1/sqrt(fanIn), 1/sqrt(fanIn)) draws.
func (ps *Params) InitUniform(rng *rand.Rand) {
	for _, p := range ps.list {
		bound := 1 / math.Sqrt(float64(max(p.FanIn, 1)))
		draw := func() float64 { return (2*rng.Float64() - 1) * bound }
		switch v := p.Value.Data().(type) {
		case []float32:
			for i := range v {
				v[i] = float32(draw())
			}
		case []float64:
			for i := range v {
				v[i] = draw()
			}
		}
	}
}

// Binding is the set of nodes through which one graph reads the parameters.
type Binding struct {
	g     *G.ExprGraph
	ps    *Params
	nodes map[string]*G.Node
	order G.Nodes
}

// Bind creates, in g, one node per parameter that shares the parameter's
// memory.
func (ps *Params) Bind(g *G.ExprGraph) *Binding {
	b := &Binding{g: g, ps: ps, nodes: make(map[string]*G.Node, len(ps.list))}
	for _, p := range ps.list {
		n := G.NodeFromAny(g, p.Value, G.WithName(p.Name))
		b.nodes[p.Name] = n
		b.order = append(b.order, n)
	}
	return b
}

// Graph is the graph the binding lives in.
func (b *Binding) Graph() *G.ExprGraph { return b.g }

// Dtype is the dtype of the bound parameters.
func (b *Binding) Dtype() tensor.Dtype { return b.ps.dtype }

// Node returns the node of the named parameter; it panics on an unknown
// name because that is a programming error in a model definition.
func (b *Binding) Node(name string) *G.Node {
	n, ok := b.nodes[name]
	if !ok {
		panic(fmt.Sprintf("nets: no parameter %q", name))
	}
	return n
}

// Nodes returns every parameter node in parameter order, for G.Grad.
func (b *Binding) Nodes() G.Nodes { return b.order }

// ZerosLike returns a zero-filled store with the names, shapes, fan-ins and
// dtype of ps (optimizer moments, gradients accumulated by hand).
func (ps *Params) ZerosLike() *Params {
	out := &Params{dtype: ps.dtype, byName: make(map[string]*Param, len(ps.list))}
	for _, p := range ps.list {
		out.New(p.Name, p.FanIn, p.Shape...) // valid: ps accepted the same
	}
	return out
}

// CopyFrom copies src's values into ps; both must hold the same names,
// shapes and dtype in the same order.
func (ps *Params) CopyFrom(src *Params) error {
	if len(ps.list) != len(src.list) {
		return fmt.Errorf("nets: copying %d tensors into %d", len(src.list), len(ps.list))
	}
	for i, d := range ps.list {
		s := src.list[i]
		if s.Name != d.Name || !s.Value.Shape().Eq(d.Value.Shape()) || s.Value.Dtype() != d.Value.Dtype() {
			return fmt.Errorf("nets: tensor %d is %s %v %v, want %s %v %v", i, s.Name, s.Shape, s.Value.Dtype(), d.Name, d.Shape, d.Value.Dtype())
		}
		if err := tensor.Copy(d.Value, s.Value); err != nil {
			return fmt.Errorf("nets: copying %s: %w", d.Name, err)
		}
	}
	return nil
}

// AllFinite reports whether a float tensor holds no NaN or infinity.
func AllFinite(t tensor.Tensor) bool {
	switch d := t.Data().(type) {
	case []float32:
		return simd.AllBelow(d, float32(math.Inf(1)))
	case []float64:
		return allFinite(d)
	}
	return true
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if x-x != 0 { // NaN or ±Inf
			return false
		}
	}
	return true
}

// NonFinite returns the name of the first parameter holding a NaN or an
// infinity, or "" when all are finite.
func (ps *Params) NonFinite() string {
	for _, p := range ps.list {
		if !AllFinite(p.Value) {
			return p.Name
		}
	}
	return ""
}
