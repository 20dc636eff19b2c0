package amortized

import (
	"fmt"

	"github.com/govae/govae/flows"
	G "gorgonia.org/gorgonia"
)

// The three Sylvester flows of van den Berg, Hasenclever, Tomczak & Welling
// (2018), "Sylvester Normalizing Flows for Variational Inference", K steps
// on a diagonal Gaussian base, every parameter amortized per example from
// encoder heads as in the paper's reference code:
//
//	z_k = z_{k-1} + Q_k R_k tanh(R̃_k Q_kᵀ z_{k-1} + b_k)
//	log|det J_k| = Σ_i log|1 + R̃_k,ii R_k,ii tanh'((R̃_k Q_kᵀ z_{k-1} + b_k)_i)|
//
// with R_ii = tanh(ρ_i), R̃_ii = tanh(ρ̃_i) (so R_ii R̃_ii > -1: invertible),
// the off-diagonals of R from the strict upper triangle of a raw M×M D and
// those of R̃ from its strict lower triangle (R̃_ij = D_ji). Head "flow.p"
// holds, per step k, D (M² values, row-major), ρ, ρ̃ and b (M each) side by
// side (K(M²+3M) values per row). Q_k is:
//
//	"sylvester:K[:M]"             orthogonal: Q_k the orthogonal polar factor
//	                              (Björck's iteration) of a raw L×M matrix,
//	                              head "flow.q" (K·L·M values, row-major);
//	                              M = L when omitted
//	"sylvester-householder:K:H"   Q_k = H_k1 ... H_kH, H Householder reflections
//	                              with raw vectors from head "flow.v" (K·H·L); M = L
//	"sylvester-triangular:K"      Q_k = I (even k, from 0) or the reversal
//	                              permutation (odd k); M = L
//
// See flows.Sylvester for the maths of one step. No closed-form inverse: no
// log q at a given z (no score estimator) and a Monte Carlo KL.
const (
	Sylvester            = "sylvester"
	SylvesterHouseholder = "sylvester-householder"
	SylvesterTriangular  = "sylvester-triangular"
)

// MaxSylvesterReflections bounds H in "sylvester-householder:K:H" (the paper
// uses up to 8).
const MaxSylvesterReflections = 1000

func init() {
	RegisterFamily(Sylvester, "sylvester:K or sylvester:K:M", func(args []string, c Config) (Family, error) {
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("sylvester takes K or K:M (K flow steps >= 1, M orthonormal columns from 1 to the latent dimension)")
		}
		k, err := countArg("the number of flow steps K", args[0], MaxFlowSteps)
		if err != nil {
			return nil, err
		}
		f := sylvesterFamily{variant: Sylvester, steps: k, m: c.Latent}
		if len(args) == 2 {
			if f.m, err = countArg("the number of orthonormal columns M", args[1], c.Latent); err != nil {
				return nil, fmt.Errorf("%w (M is at most the latent dimension)", err)
			}
		}
		return f, nil
	})
	RegisterFamily(SylvesterHouseholder, "sylvester-householder:K:H", func(args []string, c Config) (Family, error) {
		if len(args) != 2 {
			return nil, fmt.Errorf("sylvester-householder takes K:H (K flow steps >= 1, H reflections per step >= 1)")
		}
		k, err := countArg("the number of flow steps K", args[0], MaxFlowSteps)
		if err != nil {
			return nil, err
		}
		h, err := countArg("the number of reflections H", args[1], MaxSylvesterReflections)
		return sylvesterFamily{variant: SylvesterHouseholder, steps: k, m: c.Latent, h: h}, err
	})
	RegisterFamily(SylvesterTriangular, "sylvester-triangular:K", func(args []string, c Config) (Family, error) {
		k, err := parseSteps(SylvesterTriangular, args)
		return sylvesterFamily{variant: SylvesterTriangular, steps: k, m: c.Latent}, err
	})
}

type sylvesterFamily struct {
	variant  string
	steps, m int // m: M (orthogonal), else L
	h        int // reflections per step (Householder)
}

// String writes M even when it is the default L.
func (f sylvesterFamily) String() string {
	switch f.variant {
	case Sylvester:
		return fmt.Sprintf("%s:%d:%d", Sylvester, f.steps, f.m)
	case SylvesterHouseholder:
		return fmt.Sprintf("%s:%d:%d", SylvesterHouseholder, f.steps, f.h)
	}
	return fmt.Sprintf("%s:%d", f.variant, f.steps)
}

func (f sylvesterFamily) Heads(c Config) []Head {
	L, M, K := c.Latent, f.m, f.steps
	hs := gaussHeads(L)
	switch f.variant {
	case Sylvester:
		hs = append(hs, Head{Name: "flow.q", Width: K * L * M})
	case SylvesterHouseholder:
		hs = append(hs, Head{Name: "flow.v", Width: K * f.h * L})
	}
	return append(hs, Head{Name: "flow.p", Width: K * (M*M + 3*M)})
}

func (f sylvesterFamily) Bind(b *Builder, in QInput) Posterior {
	L, h := b.Config().Latent, in.Heads
	var flow flows.Flow
	var err error
	switch f.variant {
	case Sylvester:
		flow, err = flows.NewOrthogonalSylvesterStack(h["flow.q"], h["flow.p"], L, f.m, f.steps)
	case SylvesterHouseholder:
		flow, err = flows.NewHouseholderSylvesterStack(h["flow.v"], h["flow.p"], L, f.h, f.steps)
	default:
		flow, err = flows.NewTriangularSylvesterStack(h["flow.p"], L, f.steps)
	}
	if err != nil {
		b.Fail(err)
	}
	return flowPosterior{base: newDiagGauss(b, in), flow: flow}
}

// The orthogonal and Householder variants' Q depends on the row's heads
// alone, and orthogonalizing it (Björck's iteration) is most of the cost of
// a step: with q given per row (log p(x)'s k samples) it is computed once
// per row as the prepared head "flow.Q" (K·L·M values, step k's L×M Q
// row-major) instead of once per sample. The triangular variant has no Q
// to prepare: its prepared heads are its heads.

func (f sylvesterFamily) PreparedHeads(c Config) []Head {
	hs := f.Heads(c)
	if f.variant == SylvesterTriangular {
		return hs
	}
	L, M, K := c.Latent, f.m, f.steps
	return append(gaussHeads(L), Head{Name: "flow.Q", Width: K * L * M}, hs[len(hs)-1])
}

func (f sylvesterFamily) PrepareHeads(b *Builder, h HeadValues) HeadValues {
	L := b.Config().Latent
	out := HeadValues{}
	for name, v := range h {
		out[name] = v
	}
	var q *G.Node
	var err error
	switch f.variant {
	case Sylvester:
		q, err = flows.OrthogonalStackQ(h["flow.q"], L, f.m, f.steps)
		delete(out, "flow.q")
	case SylvesterHouseholder:
		q, err = flows.HouseholderStackQ(h["flow.v"], L, f.h, f.steps)
		delete(out, "flow.v")
	default:
		return out
	}
	if err != nil {
		b.Fail(err)
	}
	out["flow.Q"] = q
	return out
}

func (f sylvesterFamily) BindPrepared(b *Builder, in QInput) Posterior {
	if f.variant == SylvesterTriangular {
		return f.Bind(b, in)
	}
	h := in.Heads
	flow, err := flows.NewSylvesterStackWithQ(h["flow.Q"], h["flow.p"], b.Config().Latent, f.m, f.steps)
	if err != nil {
		b.Fail(err)
	}
	return flowPosterior{base: newDiagGauss(b, in), flow: flow}
}
