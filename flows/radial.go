package flows

import (
	"fmt"

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
// which reach 0 only when s underflows and z = z0. Gorgonia's softplus
// returns 0 below -708 (float64) or -103 (float32): there α = 0, and f is
// undefined at z = z0. The
// gradient with respect to z is undefined at z = z0 exactly (r = |z - z0|
// is not differentiable there).
type Radial struct {
	z0          *G.Node
	alpha, beta *G.Node
	s           *G.Node // softplus(raw_β) = α + β
}

// NewRadial builds α and β from the centre z0, shape (B, L), and the raw
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
	defer catch(&err, "radial")
	alpha := must(G.Softplus(rawAlpha))
	s := must(G.Softplus(rawBeta))
	return &Radial{z0: z0, alpha: alpha, beta: must(G.Sub(s, alpha)), s: s}, nil
}

// Alpha is α > 0 per row.
func (rf *Radial) Alpha() *G.Node { return rf.alpha }

// Beta is β ≥ -α per row.
func (rf *Radial) Beta() *G.Node { return rf.beta }

// Forward implements [Flow].
func (rf *Radial) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := checkParam("radial z", z, rf.z0.Shape()...); err != nil {
		return nil, nil, err
	}
	defer catch(&err, "radial")
	dt := z.Dtype()
	L := z.Shape()[1]
	diff := must(G.Sub(z, rf.z0))
	r := must(G.Sqrt(rowDot(diff, diff)))
	ar := must(G.Add(rf.alpha, r))
	out = must(G.Add(z, scaleRows(diff, must(G.HadamardDiv(rf.beta, ar)))))

	eps := scalar(dt, logEps)
	logAR := must(G.Log(ar))
	radialTerm := must(G.Sub(must(G.Log(must(G.Add(must(G.Add(rf.s, r)), eps)))), logAR))
	num := must(G.Add(must(G.HadamardProd(r, must(G.Add(r, must(G.Mul(rf.alpha, scalar(dt, 2))))))),
		must(G.HadamardProd(rf.alpha, rf.s))))
	last := must(G.Sub(must(G.Log(must(G.Add(num, eps)))), must(G.Mul(logAR, scalar(dt, 2)))))
	logDet = must(G.Add(must(G.Mul(radialTerm, scalar(dt, float64(L-1)))), last))
	return out, logDet, nil
}
