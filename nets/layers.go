package nets

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Activation names a point-wise nonlinearity.
type Activation string

// The supported activations.
const (
	ReLU     Activation = "relu"
	Tanh     Activation = "tanh"
	Softplus Activation = "softplus"
	// ELU is x for x > 0, e^x - 1 otherwise (Clevert et al. 2016), the
	// activation of the IAF and Sylvester-flow convolutional networks.
	ELU Activation = "elu"
)

// ParseActivation checks that s names a supported activation.
func ParseActivation(s string) (Activation, error) {
	switch a := Activation(s); a {
	case ReLU, Tanh, Softplus, ELU:
		return a, nil
	}
	return "", fmt.Errorf("nets: unknown activation %q (want relu, elu, tanh or softplus)", s)
}

// Apply adds the activation of x to x's graph.
func (a Activation) Apply(x *G.Node) (*G.Node, error) {
	switch a {
	case ReLU:
		return G.Rectify(x)
	case Tanh:
		return G.Tanh(x)
	case Softplus:
		return G.Softplus(x)
	case ELU:
		return Act(x, ELU)
	}
	return nil, fmt.Errorf("nets: unknown activation %q", string(a))
}

// Linear is a dense layer y = x W + b, W of shape (In, Out), b of shape (Out).
type Linear struct {
	Name    string // parameters are Name+".weight" and Name+".bias"
	In, Out int
}

// NewLinear registers the layer's parameters in ps.
func NewLinear(ps *Params, name string, in, out int) (Linear, error) {
	l := Linear{Name: name, In: in, Out: out}
	if _, err := ps.New(l.WeightName(), in, in, out); err != nil {
		return Linear{}, err
	}
	if _, err := ps.New(l.BiasName(), in, out); err != nil {
		return Linear{}, err
	}
	return l, nil
}

// WeightName is the parameter name of W.
func (l Linear) WeightName() string { return l.Name + ".weight" }

// BiasName is the parameter name of b.
func (l Linear) BiasName() string { return l.Name + ".bias" }

// Forward computes x W + b for x of shape (B, In).
func (l Linear) Forward(b *Binding, x *G.Node) (*G.Node, error) {
	return affine(l.Name, x, b.Node(l.WeightName()), b.Node(l.BiasName()))
}

// affine is x w + bias for the layer called name.
func affine(name string, x, w, bias *G.Node) (*G.Node, error) {
	y, err := Dense(x, w, bias, "", false)
	if err != nil {
		return nil, fmt.Errorf("nets: %s: %w", name, err)
	}
	return y, nil
}

// MLP is a stack of Linear layers each followed by Act.
type MLP struct {
	Layers []Linear
	Act    Activation
}

// NewMLP registers layers name.0, name.1, ... mapping in -> sizes[0] -> ... .
// With no sizes the MLP is the identity.
func NewMLP(ps *Params, name string, in int, sizes []int, act Activation) (MLP, error) {
	if _, err := ParseActivation(string(act)); err != nil {
		return MLP{}, err
	}
	m := MLP{Act: act}
	for i, out := range sizes {
		if out <= 0 {
			return MLP{}, fmt.Errorf("nets: %s: layer %d has size %d, want > 0", name, i, out)
		}
		l, err := NewLinear(ps, fmt.Sprintf("%s.%d", name, i), in, out)
		if err != nil {
			return MLP{}, err
		}
		m.Layers = append(m.Layers, l)
		in = out
	}
	return m, nil
}

// Out is the output width given the input width in.
func (m MLP) Out(in int) int {
	if len(m.Layers) == 0 {
		return in
	}
	return m.Layers[len(m.Layers)-1].Out
}

// Forward applies every layer and its activation.
func (m MLP) Forward(b *Binding, x *G.Node) (*G.Node, error) { return m.forward(b, x, false) }

// ForwardData is Forward for x that is data: x gets no gradient, which
// saves the first layer's largest backward product.
func (m MLP) ForwardData(b *Binding, x *G.Node) (*G.Node, error) { return m.forward(b, x, true) }

func (m MLP) forward(b *Binding, x *G.Node, data bool) (*G.Node, error) {
	h := x
	for i, l := range m.Layers {
		var err error
		h, err = Dense(h, b.Node(l.WeightName()), b.Node(l.BiasName()), m.Act, data && i == 0)
		if err != nil {
			return nil, fmt.Errorf("nets: %s: %w", l.Name, err)
		}
	}
	return h, nil
}
