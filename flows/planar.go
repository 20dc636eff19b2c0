package flows

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Planar is the planar flow of Rezende & Mohamed (2015), with its own
// parameters for every row (amortized: they come from the encoder):
//
//	f(z) = z + û tanh(w·z + b)
//	log|det df/dz| = log|1 + û·ψ(z)|,  ψ(z) = (1 - tanh²(w·z + b)) w
//
// f is invertible when w·û ≥ -1. The raw parameter u is reparameterized to
// satisfy that for any value (Rezende & Mohamed 2015, appendix A):
//
//	û = u + (m(w·u) - w·u) w / |w|²,  m(a) = -1 + softplus(a)
//
// so that w·û = m(w·u) > -1. A row with w = 0 is outside the domain (û
// divides by |w|²) and yields NaN.
//
// At the boundary (w·u → -∞) the determinant 1 + û·ψ tends to tanh², which
// is 0 where w·z + b = 0; the log-determinant is log(|1 + û·ψ| + 1e-8).
type Planar struct {
	u, w, b *G.Node
	uHat    *G.Node
	wuHat   *G.Node // w·û per row
}

// NewPlanar builds û from raw parameters u and w of shape (B, L) and b of
// shape (B), all nodes of one graph.
func NewPlanar(u, w, b *G.Node) (p *Planar, err error) {
	if u == nil || u.Shape().Dims() != 2 {
		return nil, fmt.Errorf("flows: planar u must be a (B, L) matrix node, got %v", shapeOf(u))
	}
	B, L := u.Shape()[0], u.Shape()[1]
	if err := checkParam("planar w", w, B, L); err != nil {
		return nil, err
	}
	if err := checkParam("planar b", b, B); err != nil {
		return nil, err
	}
	defer catch(&err, "planar")
	dt := u.Dtype()
	wu := rowDot(w, u)
	m := must(G.Sub(must(G.Softplus(wu)), scalar(dt, 1)))
	coef := must(G.HadamardDiv(must(G.Sub(m, wu)), rowDot(w, w)))
	uHat := must(G.Add(u, scaleRows(w, coef)))
	return &Planar{u: u, w: w, b: b, uHat: uHat, wuHat: rowDot(w, uHat)}, nil
}

// UHat is the constrained û, shape (B, L).
func (p *Planar) UHat() *G.Node { return p.uHat }

// Forward implements [Flow].
func (p *Planar) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := checkParam("planar z", z, p.u.Shape()...); err != nil {
		return nil, nil, err
	}
	defer catch(&err, "planar")
	dt := z.Dtype()
	t := must(G.Tanh(must(G.Add(rowDot(p.w, z), p.b))))
	out = must(G.Add(z, scaleRows(p.uHat, t)))
	// û·ψ = (1 - t²) w·û, so the determinant needs no L-vector ψ.
	dtanh := must(G.Sub(scalar(dt, 1), must(G.Square(t))))
	det := must(G.Add(scalar(dt, 1), must(G.HadamardProd(dtanh, p.wuHat))))
	logDet = must(G.Log(must(G.Add(must(G.Abs(det)), scalar(dt, logEps)))))
	return out, logDet, nil
}
