package flows

import (
	"fmt"
	"math"

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
//
// Forward is one fused graph node with a hand-written backward pass
// (computed in float64 for either dtype), and [Compose] runs consecutive
// planar, radial, Householder and Sylvester steps as one node.
type Planar struct {
	u, w, b *G.Node
	uHat    *G.Node // built on first use
}

// NewPlanar builds the step from raw parameters u and w of shape (B, L) and
// b of shape (B), all nodes of one graph.
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
	if w.Graph() != u.Graph() || b.Graph() != u.Graph() {
		return nil, fmt.Errorf("flows: planar u, w and b are not all in one graph")
	}
	return &Planar{u: u, w: w, b: b}, nil
}

// UHat is the constrained û, shape (B, L), as graph nodes (Forward does not
// need them).
func (p *Planar) UHat() *G.Node {
	if p.uHat == nil {
		uHat, _, err := planarUHatNodes(p.u, p.w)
		if err != nil {
			panic(err) // the shapes were checked by NewPlanar
		}
		p.uHat = uHat
	}
	return p.uHat
}

// Forward implements [Flow].
func (p *Planar) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := p.check(z); err != nil {
		return nil, nil, err
	}
	ss, ps := p.steps()
	return forwardSteps(z, ss, ps)
}

func (p *Planar) check(z *G.Node) error {
	if err := checkParam("planar z", z, p.u.Shape()...); err != nil {
		return err
	}
	if z.Graph() != p.u.Graph() || z.Dtype() != p.u.Dtype() {
		return fmt.Errorf("flows: planar z (%v) is not in the parameters' graph or dtype (%v)", z.Dtype(), p.u.Dtype())
	}
	return nil
}

func (p *Planar) steps() ([]step, [][]*G.Node) {
	return []step{planarStep{L: p.u.Shape()[1]}}, [][]*G.Node{{p.u, p.w, p.b}}
}

// planarUHatNodes is û and w·û from gorgonia primitives.
func planarUHatNodes(u, w *G.Node) (uHat, wuHat *G.Node, err error) {
	defer catch(&err, "planar")
	dt := u.Dtype()
	wu := rowDot(w, u)
	m := must(G.Sub(must(G.Softplus(wu)), scalar(dt, 1)))
	coef := must(G.HadamardDiv(must(G.Sub(m, wu)), rowDot(w, w)))
	uHat = must(G.Add(u, scaleRows(w, coef)))
	return uHat, rowDot(w, uHat), nil
}

// planarNodes is the planar step built node by node from gorgonia
// primitives: the reference the fused op is tested against.
func planarNodes(u, w, b, z *G.Node) (out, logDet *G.Node, err error) {
	uHat, wuHat, err := planarUHatNodes(u, w)
	if err != nil {
		return nil, nil, err
	}
	defer catch(&err, "planar")
	dt := z.Dtype()
	t := must(G.Tanh(must(G.Add(rowDot(w, z), b))))
	out = must(G.Add(z, scaleRows(uHat, t)))
	// û·ψ = (1 - t²) w·û, so the determinant needs no L-vector ψ.
	dtanh := must(G.Sub(scalar(dt, 1), must(G.Square(t))))
	det := must(G.Add(scalar(dt, 1), must(G.HadamardProd(dtanh, wuHat))))
	logDet = must(G.Log(must(G.Add(must(G.Abs(det)), scalar(dt, logEps)))))
	return out, logDet, nil
}

// planarStep is one planar step on a row: inputs z, u, w (width L) and b.
type planarStep struct{ L int }

func (s planarStep) String() string  { return fmt.Sprintf("planar(%d)", s.L) }
func (s planarStep) dim() int        { return s.L }
func (s planarStep) inWidths() []int { return []int{s.L, s.L, s.L, 1} }
func (s planarStep) outWidth() int   { return s.L + 1 }
func (s planarStep) workSize() int   { return 6 } // planarParts, for resume

// planarParts is what forward and backward share: wu = w·u, ww = |w|²,
// m = w·û, c = (m - wu)/ww (û = u + c w), t = tanh(w·z + b), det.
type planarParts struct{ wu, ww, m, c, t, det float64 }

func (s planarStep) parts(in [][]float64) planarParts {
	z, u, w, b := in[0], in[1], in[2], in[3][0]
	var p planarParts
	var wz float64
	for j, wj := range w {
		p.wu += wj * u[j]
		p.ww += wj * wj
		wz += wj * z[j]
	}
	p.m = -1 + softplus(p.wu)
	p.c = (p.m - p.wu) / p.ww
	p.t = math.Tanh(wz + b)
	// w·û = m exactly; computing it as w·(u + c w) would add rounding.
	p.det = 1 + (1-p.t*p.t)*p.m
	return p
}

func (p planarParts) save(work []float64) {
	work[0], work[1], work[2], work[3], work[4], work[5] = p.wu, p.ww, p.m, p.c, p.t, p.det
}

func loadPlanarParts(work []float64) planarParts {
	return planarParts{work[0], work[1], work[2], work[3], work[4], work[5]}
}

func (s planarStep) forward(in [][]float64, out, work []float64) error {
	z, u, w := in[0], in[1], in[2]
	p := s.parts(in)
	p.save(work)
	for j := range z {
		out[j] = z[j] + (u[j]+p.c*w[j])*p.t
	}
	out[s.L] = math.Log(math.Abs(p.det) + logEps)
	return nil
}

func (s planarStep) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	s.parts(in).save(work)
	return s.resume(in, out, gout, gin, work)
}

// resume is backward with the parts forward saved in work.
func (s planarStep) resume(in [][]float64, _, gout []float64, gin [][]float64, work []float64) error {
	z, u, w := in[0], in[1], in[2]
	gz, gu, gw, gb := gin[0], gin[1], gin[2], gin[3]
	p := loadPlanarParts(work)
	g, gl := gout[:s.L], gout[s.L]
	gdet := gl * math.Copysign(1, p.det) / (math.Abs(p.det) + logEps)
	// out = z + û t;  det = 1 + (1 - t²) m.
	var gt, gc float64
	for j, gj := range g {
		gt += gj * (u[j] + p.c*w[j])
		gc += gj * p.t * w[j]
	}
	gt += gdet * p.m * (-2 * p.t)
	gm := gdet * (1 - p.t*p.t)
	ga := gt * (1 - p.t*p.t) // a = w·z + b
	// c = (m - wu)/ww.
	gm += gc / p.ww
	gwu := -gc/p.ww + gm*softplusDeriv(p.wu) // m = -1 + softplus(wu)
	gww := -gc * p.c / p.ww
	for j, gj := range g {
		gz[j] += gj + ga*w[j]
		gu[j] += gj*p.t + gwu*w[j]
		gw[j] += ga*z[j] + gj*p.t*p.c + gwu*u[j] + 2*gww*w[j]
	}
	gb[0] += ga
	return nil
}

// softplus is log(1 + e^x) as gorgonia computes it in float64 (x above 16,
// 0 below -708), so fused and node-by-node flows agree to rounding.
func softplus(x float64) float64 {
	switch {
	case x < -708:
		return 0
	case x > 16:
		return x
	}
	return math.Log1p(math.Exp(x))
}

// softplusDeriv is the derivative of softplus as computed.
func softplusDeriv(x float64) float64 {
	switch {
	case x < -708:
		return 0
	case x > 16:
		return 1
	}
	return 1 / (1 + math.Exp(-x))
}
