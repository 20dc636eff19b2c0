package flows

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// Radial is the radial flow of Rezende & Mohamed (2015), with its own
// parameters for every row (amortized: they come from the encoder):
//
//	f(z) = z + β h(α, r) (z - z0),  r = |z - z0|,  h = 1/(α + r)
//	log|det df/dz| = (L-1) log(1 + βh) + log(1 + βh + β h'(r) r),  h' = -1/(α+r)²
//
// f is invertible when α > 0 and β ≥ -α; the raw parameters are
// reparameterized to satisfy that for any value:
//
//	α = softplus(raw_α),  β = -α + softplus(raw_β)
//
// The log-determinant is computed in a form with no cancellation. Writing
// s = softplus(raw_β) = α + β ≥ 0,
//
//	1 + βh           = (s + r) / (α + r)
//	1 + βh + βh'(r)r = (r(r + 2α) + αs) / (α + r)²
//
// both numerators sums of non-negative terms, so the log stays accurate at
// the boundary β = -α; 1e-8 is added inside the logs of the numerators,
// which reach 0 only when s underflows and z = z0. Softplus is computed as
// gorgonia's, which returns 0 below -708: there α = 0, and f is undefined
// at z = z0. The gradient with respect to z is undefined at z = z0 exactly
// (r = |z - z0| is not differentiable there); the fused backward pass
// returns the one-sided value without the r term.
//
// Forward is one fused graph node with a hand-written backward pass (see
// [Planar]).
type Radial struct {
	z0, rawAlpha, rawBeta *G.Node
	alpha, beta           *G.Node // built on first use
}

// NewRadial builds the step from the centre z0, shape (B, L), and the raw
// parameters rawAlpha and rawBeta, shape (B), all nodes of one graph.
func NewRadial(z0, rawAlpha, rawBeta *G.Node) (r *Radial, err error) {
	if z0 == nil || z0.Shape().Dims() != 2 {
		return nil, fmt.Errorf("flows: radial z0 must be a (B, L) matrix node, got %v", shapeOf(z0))
	}
	B := z0.Shape()[0]
	if err := checkParam("radial raw alpha", rawAlpha, B); err != nil {
		return nil, err
	}
	if err := checkParam("radial raw beta", rawBeta, B); err != nil {
		return nil, err
	}
	if rawAlpha.Graph() != z0.Graph() || rawBeta.Graph() != z0.Graph() {
		return nil, fmt.Errorf("flows: radial z0, raw alpha and raw beta are not all in one graph")
	}
	return &Radial{z0: z0, rawAlpha: rawAlpha, rawBeta: rawBeta}, nil
}

// Alpha is α > 0 per row, as graph nodes (Forward does not need them).
func (rf *Radial) Alpha() *G.Node { rf.constrained(); return rf.alpha }

// Beta is β ≥ -α per row, as graph nodes.
func (rf *Radial) Beta() *G.Node { rf.constrained(); return rf.beta }

func (rf *Radial) constrained() {
	if rf.alpha == nil {
		alpha, s := must2(G.Softplus(rf.rawAlpha)), must2(G.Softplus(rf.rawBeta))
		rf.alpha, rf.beta = alpha, must2(G.Sub(s, alpha))
	}
}

// must2 panics on a construction error that checked shapes rule out.
func must2(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

// Forward implements [Flow].
func (rf *Radial) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := rf.check(z); err != nil {
		return nil, nil, err
	}
	ss, ps := rf.steps()
	return forwardSteps(z, ss, ps)
}

func (rf *Radial) check(z *G.Node) error {
	if err := checkParam("radial z", z, rf.z0.Shape()...); err != nil {
		return err
	}
	if z.Graph() != rf.z0.Graph() || z.Dtype() != rf.z0.Dtype() {
		return fmt.Errorf("flows: radial z (%v) is not in the parameters' graph or dtype (%v)", z.Dtype(), rf.z0.Dtype())
	}
	return nil
}

func (rf *Radial) steps() ([]step, [][]*G.Node) {
	return []step{radialStep{L: rf.z0.Shape()[1]}}, [][]*G.Node{{rf.z0, rf.rawAlpha, rf.rawBeta}}
}

// radialNodes is the radial step built node by node from gorgonia
// primitives: the reference the fused op is tested against.
func radialNodes(z0, rawAlpha, rawBeta, z *G.Node) (out, logDet *G.Node, err error) {
	defer catch(&err, "radial")
	alpha := must(G.Softplus(rawAlpha))
	s := must(G.Softplus(rawBeta))
	beta := must(G.Sub(s, alpha))
	dt := z.Dtype()
	L := z.Shape()[1]
	diff := must(G.Sub(z, z0))
	r := must(G.Sqrt(rowDot(diff, diff)))
	ar := must(G.Add(alpha, r))
	out = must(G.Add(z, scaleRows(diff, must(G.HadamardDiv(beta, ar)))))

	eps := scalar(dt, logEps)
	logAR := must(G.Log(ar))
	radialTerm := must(G.Sub(must(G.Log(must(G.Add(must(G.Add(s, r)), eps)))), logAR))
	num := must(G.Add(must(G.HadamardProd(r, must(G.Add(r, must(G.Mul(alpha, scalar(dt, 2))))))),
		must(G.HadamardProd(alpha, s))))
	last := must(G.Sub(must(G.Log(must(G.Add(num, eps)))), must(G.Mul(logAR, scalar(dt, 2)))))
	logDet = must(G.Add(must(G.Mul(radialTerm, scalar(dt, float64(L-1)))), last))
	return out, logDet, nil
}

// radialStep is one radial step on a row: inputs z, z0 (width L), raw α
// and raw β.
type radialStep struct{ L int }

func (s radialStep) String() string  { return fmt.Sprintf("radial(%d)", s.L) }
func (s radialStep) dim() int        { return s.L }
func (s radialStep) inWidths() []int { return []int{s.L, s.L, 1, 1} }
func (s radialStep) outWidth() int   { return s.L + 1 }
func (s radialStep) workSize() int   { return 3 } // α, s, r for resume

func (s radialStep) forward(in [][]float64, out, work []float64) error {
	z, z0 := in[0], in[1]
	alpha, sp := softplus(in[2][0]), softplus(in[3][0])
	beta := sp - alpha
	r := dist(z, z0)
	work[0], work[1], work[2] = alpha, sp, r
	ar := alpha + r
	c := beta / ar
	for j := range z {
		out[j] = z[j] + c*(z[j]-z0[j])
	}
	logAR := math.Log(ar)
	out[s.L] = float64(s.L-1)*(math.Log(sp+r+logEps)-logAR) +
		math.Log(r*(r+2*alpha)+alpha*sp+logEps) - 2*logAR
	return nil
}

func dist(a, b []float64) float64 {
	var r float64
	for j := range a {
		d := a[j] - b[j]
		r += d * d
	}
	return math.Sqrt(r)
}

func (s radialStep) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	work[0], work[1], work[2] = softplus(in[2][0]), softplus(in[3][0]), dist(in[0], in[1])
	return s.resume(in, out, gout, gin, work)
}

// resume is backward with α, softplus(raw β) and r saved in work by forward.
func (s radialStep) resume(in [][]float64, _, gout []float64, gin [][]float64, work []float64) error {
	z, z0 := in[0], in[1]
	gz, gz0, gra, grb := gin[0], gin[1], gin[2], gin[3]
	alpha, sp, r := work[0], work[1], work[2]
	beta := sp - alpha
	ar := alpha + r
	c := beta / ar
	g, gl := gout[:s.L], gout[s.L]
	// out = z + c d, d = z - z0.
	var gc float64
	for j, gj := range g {
		gc += gj * (z[j] - z0[j])
	}
	// c = β/(α + r); ld = (L-1)(log A - log ar) + log N - 2 log ar with
	// A = s + r + ε, N = r(r + 2α) + αs + ε.
	Lm1 := float64(s.L - 1)
	A, N := sp+r+logEps, r*(r+2*alpha)+alpha*sp+logEps
	gbeta := gc / ar
	gar := -gc*beta/(ar*ar) - gl*(Lm1+2)/ar
	gs := gl*(Lm1/A+alpha/N) + gbeta
	galpha := gl*(2*r+sp)/N - gbeta + gar
	gr := gl*(Lm1/A+(2*r+2*alpha)/N) + gar
	for j, gj := range g {
		d := z[j] - z0[j]
		gd := c * gj
		if r > 0 {
			gd += gr * d / r
		}
		gz[j] += gj + gd
		gz0[j] -= gd
	}
	gra[0] += galpha * softplusDeriv(in[2][0])
	grb[0] += gs * softplusDeriv(in[3][0])
	return nil
}
