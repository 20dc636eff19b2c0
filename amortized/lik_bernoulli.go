package amortized

import (
	"errors"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// Bernoulli is p(x|z) = prod_d Bernoulli(x_d; sigmoid(l_d)), "bernoulli"
// (the default), with x in [0,1] (grey levels are the expected count).
const Bernoulli = "bernoulli"

func init() {
	RegisterLikelihood(Bernoulli, Bernoulli, func(args []string, c Config) (Likelihood, error) {
		return bernoulli{}, noArgs(Bernoulli, args)
	})
}

type bernoulli struct{}

func (bernoulli) String() string            { return Bernoulli }
func (bernoulli) Heads(c Config) []Head     { return []Head{{Name: "logits", Width: c.DataDim}} }
func (bernoulli) Preprocess() Preprocessing { return PreprocessBinarize }

var errUnit = errors.New("want a value in [0,1] for a Bernoulli model")

func (bernoulli) CheckValue(v float32) error {
	if v < 0 || v > 1 {
		return errUnit
	}
	return nil
}

func (bernoulli) valueRange() (lo, hi float32) { return 0, 1 }

func (bernoulli) Bind(b *Builder, heads HeadValues) Decoded {
	return &bernoulliDecoded{logits: heads["logits"], evalOnly: b.evalOnly, fixedW: b.fixedW}
}

type bernoulliDecoded struct {
	logits, mean    *G.Node
	evalOnly, fused bool
	fixedW          bool // the weights do not change (Builder.fixedW)
}

// LogProb is x l - softplus(l) summed over pixels, which never forms
// log(sigmoid) and so stays finite for any logit l. In a graph that is not
// differentiated and with a linear head for l, it is the fused op (the
// same numbers in one pass over the decoder's output product, the largest
// matrix of log p(x)), unless the mean was read first.
func (d *bernoulliDecoded) LogProb(x *G.Node) *G.Node {
	if d.evalOnly && d.mean == nil {
		ll, ok, err := nets.FuseBernoulliLogLik(x, d.logits, d.fixedW)
		if ok || err != nil {
			d.fused = true
			return must(ll, err)
		}
	}
	return must(nets.BernoulliLogLik(x, d.logits))
}

// Mean is sigmoid(l), added only where it is read: the tape machine runs
// every node, and training never needs it (nets.Sigmoid has no gradient).
func (d *bernoulliDecoded) Mean() *G.Node {
	if d.mean == nil {
		if d.fused {
			nets.Unfuse(d.logits) // l is read here too: compute it again
		}
		d.mean = must(nets.Sigmoid(d.logits))
	}
	return d.mean
}
