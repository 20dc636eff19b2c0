package flows

import (
	"fmt"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// Householder is one step of the Householder flow of Tomczak & Welling
// (2016), "Improving Variational Auto-Encoders using Householder Flow":
// a reflection with its own vector v for every row,
//
//	f(z) = H z,  H = I - 2 v vᵀ / |v|²
//	log|det df/dz| = 0
//
// H is orthogonal and its own inverse (f(f(z)) = z), so every v ≠ 0 gives
// an invertible, volume-preserving map; v = 0 is outside the domain and
// yields NaN. Alone, such steps only rotate and reflect: on top of a
// diagonal Gaussian q0 = N(μ, diag σ²) they give q = N(Uμ, U diag(σ²) Uᵀ)
// with U = H_K ... H_1, a full-covariance Gaussian (the paper's point).
// The paper computes each v_k from the previous one, v_k = W_k v_{k-1} +
// c_k, with v_1 from the encoder: [HouseholderChain] does that.
type Householder struct{ v *G.Node }

// NewHouseholder builds the reflection from v, shape (B, L).
func NewHouseholder(v *G.Node) (*Householder, error) {
	if v == nil || v.Shape().Dims() != 2 {
		return nil, fmt.Errorf("flows: Householder v must be a (B, L) matrix node, got %v", shapeOf(v))
	}
	return &Householder{v: v}, nil
}

// Forward implements [Flow].
func (h *Householder) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := h.check(z); err != nil {
		return nil, nil, err
	}
	ss, ps := h.steps()
	return forwardSteps(z, ss, ps)
}

func (h *Householder) check(z *G.Node) error {
	if err := checkParam("Householder z", z, h.v.Shape()...); err != nil {
		return err
	}
	if z.Graph() != h.v.Graph() || z.Dtype() != h.v.Dtype() {
		return fmt.Errorf("flows: Householder z (%v) is not in v's graph or dtype (%v)", z.Dtype(), h.v.Dtype())
	}
	return nil
}

func (h *Householder) steps() ([]step, [][]*G.Node) {
	return []step{householderStep{L: h.v.Shape()[1]}}, [][]*G.Node{{h.v}}
}

// householderStep reflects a row: inputs z and v (width L).
type householderStep struct{ L int }

func (s householderStep) String() string  { return fmt.Sprintf("householder(%d)", s.L) }
func (s householderStep) dim() int        { return s.L }
func (s householderStep) inWidths() []int { return []int{s.L, s.L} }
func (s householderStep) outWidth() int   { return s.L + 1 }
func (s householderStep) workSize() int   { return 0 }

func (s householderStep) forward(in [][]float64, out, _ []float64) error {
	z, v := in[0], in[1]
	var vz, vv float64
	for j, vj := range v {
		vz += vj * z[j]
		vv += vj * vj
	}
	c := 2 * vz / vv
	for j, vj := range v {
		out[j] = z[j] - c*vj
	}
	out[s.L] = 0
	return nil
}

func (s householderStep) backward(in [][]float64, _, gout []float64, gin [][]float64, _ []float64) error {
	z, v := in[0], in[1]
	g := gout[:s.L]
	var vz, vv, gv float64
	for j, vj := range v {
		vz += vj * z[j]
		vv += vj * vj
		gv += vj * g[j]
	}
	// out = z - 2 v (v·z)/n, n = v·v: d/dv = -2 (g (v·z) + (g·v) z)/n + 4 (g·v)(v·z) v/n².
	for j, vj := range v {
		gin[0][j] += g[j] - 2*gv*vj/vv
		gin[1][j] += -2*(g[j]*vz+gv*z[j])/vv + 4*gv*vz*vj/(vv*vv)
	}
	return nil
}

// HouseholderChain is K Householder steps whose vectors follow Tomczak &
// Welling (2016) and their code: v_1 is given (a linear head on the
// encoder's last hidden layer, owned by the caller) and
//
//	v_k = W_k v_{k-1} + c_k,  k = 2..K
//
// with W_k (L, L) and c_k (L) registered in a [nets.Params] as
// name+".k.weight" and name+".k.bias", k = 2..K (K-1 maps).
type HouseholderChain struct {
	maps []nets.Linear
	dim  int
}

// NewHouseholderChain registers the K-1 maps for K steps on dimension L.
func NewHouseholderChain(ps *nets.Params, name string, L, K int) (HouseholderChain, error) {
	switch {
	case ps == nil:
		return HouseholderChain{}, fmt.Errorf("flows: Householder chain %q: nil parameter store", name)
	case L <= 0:
		return HouseholderChain{}, fmt.Errorf("flows: Householder chain %q: dimension %d, want > 0", name, L)
	case K <= 0:
		return HouseholderChain{}, fmt.Errorf("flows: Householder chain %q: %d steps, want > 0", name, K)
	}
	c := HouseholderChain{dim: L}
	for k := 2; k <= K; k++ {
		l, err := nets.NewLinear(ps, fmt.Sprintf("%s.%d", name, k), L, L)
		if err != nil {
			return HouseholderChain{}, fmt.Errorf("flows: Householder chain %q: %w", name, err)
		}
		c.maps = append(c.maps, l)
	}
	return c, nil
}

// Steps is K.
func (c HouseholderChain) Steps() int { return len(c.maps) + 1 }

// Bind returns the K steps as one Flow in b's graph, from v1 of shape
// (B, L), together with the vectors v_1..v_K.
func (c HouseholderChain) Bind(b *nets.Binding, v1 *G.Node) (Flow, []*G.Node, error) {
	if b == nil {
		return nil, nil, fmt.Errorf("flows: Householder chain: nil binding")
	}
	if v1 == nil || v1.Shape().Dims() != 2 || v1.Shape()[1] != c.dim {
		return nil, nil, fmt.Errorf("flows: Householder chain v1 has shape %v, want (B, %d)", shapeOf(v1), c.dim)
	}
	vs := []*G.Node{v1}
	for _, l := range c.maps {
		v, err := l.Forward(b, vs[len(vs)-1])
		if err != nil {
			return nil, nil, fmt.Errorf("flows: Householder chain: %w", err)
		}
		vs = append(vs, v)
	}
	fs := make([]Flow, len(vs))
	for k, v := range vs {
		h, err := NewHouseholder(v)
		if err != nil {
			return nil, nil, err
		}
		fs[k] = h
	}
	return Compose(fs...), vs, nil
}
