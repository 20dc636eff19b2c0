package amortized

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// Gaussian is p(x|z) = prod_d N(x_d; m_d, s2_d) with m = sigmoid(head mean)
// and s2 = softplus(head var) + Config.GaussianMinVar, "gaussian".
const Gaussian = "gaussian"

func init() {
	RegisterLikelihood(Gaussian, Gaussian, func(args []string, c Config) (Likelihood, error) {
		return gaussianLik{minVar: c.GaussianMinVar}, noArgs(Gaussian, args)
	})
}

type gaussianLik struct{ minVar float64 }

func (gaussianLik) String() string { return Gaussian }
func (gaussianLik) Heads(c Config) []Head {
	return []Head{{Name: "mean", Width: c.DataDim}, {Name: "var", Width: c.DataDim}}
}
func (gaussianLik) Preprocess() Preprocessing    { return PreprocessGrey }
func (gaussianLik) CheckValue(float32) error     { return nil } // any finite value
func (gaussianLik) valueRange() (lo, hi float32) { return -math.MaxFloat32, math.MaxFloat32 }

func (l gaussianLik) Bind(b *Builder, heads HeadValues) Decoded {
	mean := must(G.Sigmoid(heads["mean"]))
	variance := must(G.Add(must(G.Softplus(heads["var"])), b.Scalar(l.minVar)))
	return gaussianDecoded{b: b, mean: mean, variance: variance}
}

type gaussianDecoded struct {
	b              *Builder
	mean, variance *G.Node
}

// LogProb is -(log 2 pi + log s2 + (x-m)^2/s2)/2 summed over pixels.
func (d gaussianDecoded) LogProb(x *G.Node) *G.Node {
	diff := must(G.Sub(x, d.mean))
	quad := must(G.HadamardDiv(must(G.Square(diff)), d.variance))
	per := must(G.Add(must(G.Log(d.variance)), quad))
	per = must(G.Add(per, d.b.Scalar(math.Log(2*math.Pi))))
	per = must(G.Mul(per, d.b.Scalar(-0.5)))
	return must(G.Sum(per, 1))
}

func (d gaussianDecoded) Mean() *G.Node { return d.mean }
