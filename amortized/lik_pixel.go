package amortized

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// pixelLik is a likelihood of 8-bit pixels (nets.PixelLogLik): x = v/255
// on the grid of 256 levels, the parameters one decoder head "params" of
// nets.PixelParamWidth values per row, laid out [P][D] (P blocks of D
// columns). Registered in lik_logistic.go and lik_categorical.go.
type pixelLik struct {
	name string // canonical string
	kind nets.PixelKind
	k    int
}

func (l pixelLik) String() string { return l.name }
func (l pixelLik) Heads(c Config) []Head {
	return []Head{{Name: "params", Width: nets.PixelParamWidth(l.kind, l.k, c.DataDim)}}
}

// Preprocess: grey levels v/255, never binarized.
func (pixelLik) Preprocess() Preprocessing { return PreprocessGrey }

func (l pixelLik) CheckValue(v float32) error {
	f := float64(v) * 255
	if r := math.Round(f); !(r >= 0 && r <= 255) || math.Abs(f-r) > 1e-3 {
		return fmt.Errorf("want an 8-bit level v/255 (v = 0..255) for a %s model", l.name)
	}
	return nil
}

func (l pixelLik) Bind(b *Builder, heads HeadValues) Decoded {
	return &pixelDecoded{l: l, params: heads["params"]}
}

type pixelDecoded struct {
	l            pixelLik
	params, mean *G.Node
}

// LogProb is log p(x|z) summed over the pixels, in nats. x is rounded to
// the nearest level first: observed data were checked by CheckValue
// before any graph ran, and imputation feeds means (off the grid) back in
// for the missing pixels, whose log-probability it does not read.
func (d *pixelDecoded) LogProb(x *G.Node) *G.Node {
	snapped := must(G.ApplyOp(pixelMapOp{what: "snap", d: x.Shape()[1]}, x))
	return must(nets.PixelLogLik(d.l.kind, d.l.k, snapped, d.params))
}

// Mean is E[v]/255 per value (nets.PixelMean), built only where read.
func (d *pixelDecoded) Mean() *G.Node {
	if d.mean == nil {
		D := d.params.Shape()[1] * pixelUnits(d.l.kind) / nets.PixelParams(d.l.kind, d.l.k)
		d.mean = must(G.ApplyOp(pixelMapOp{what: "mean", kind: d.l.kind, k: d.l.k, d: D}, d.params))
	}
	return d.mean
}

func pixelUnits(kind nets.PixelKind) int {
	if kind == nets.PixelLogisticMixRGB {
		return 3
	}
	return 1
}

// pixelMapOp is a row-wise map without gradient: "snap" rounds x to the
// nearest level v/255 in [0,1]; "mean" maps a row of parameters to the
// likelihood's mean (d values).
type pixelMapOp struct {
	what string
	kind nets.PixelKind
	k, d int
}

func (op pixelMapOp) Arity() int { return 1 }
func (op pixelMapOp) Type() hm.Type {
	a := G.TensorType{Dims: 2, Of: hm.TypeVariable('a')}
	return hm.NewFnType(a, a)
}
func (op pixelMapOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 2 {
		return nil, fmt.Errorf("amortized: %v: input shape %v, want a matrix", op, in[0])
	}
	return tensor.Shape{s[0], op.d}, nil
}
func (op pixelMapOp) ReturnsPtr() bool     { return false }
func (op pixelMapOp) CallsExtern() bool    { return false }
func (op pixelMapOp) OverwritesInput() int { return -1 }
func (op pixelMapOp) String() string {
	return fmt.Sprintf("pixel%s[%d,%d,%d]", op.what, op.kind, op.k, op.d)
}
func (op pixelMapOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op pixelMapOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op pixelMapOp) Do(in ...G.Value) (G.Value, error) {
	t, ok := in[0].(*tensor.Dense)
	if !ok || t.Shape().Dims() != 2 {
		return nil, fmt.Errorf("amortized: %v: input %T, want a matrix", op, in[0])
	}
	B, W := t.Shape()[0], t.Shape()[1]
	var src []float64
	switch v := t.Data().(type) {
	case []float64:
		src = v
	case []float32:
		src = make([]float64, len(v))
		for i, x := range v {
			src[i] = float64(x)
		}
	default:
		return nil, fmt.Errorf("amortized: %v: dtype %v", op, t.Dtype())
	}
	out := make([]float64, B*op.d)
	switch op.what {
	case "snap":
		for i, x := range src {
			out[i] = min(max(math.Round(x*255), 0), 255) / 255
		}
	case "mean":
		for r := range B {
			if err := nets.PixelMean(op.kind, op.k, src[r*W:(r+1)*W], out[r*op.d:(r+1)*op.d]); err != nil {
				return nil, err
			}
		}
	}
	if t.Dtype() == tensor.Float64 {
		return tensor.New(tensor.WithShape(B, op.d), tensor.WithBacking(out)), nil
	}
	o32 := make([]float32, len(out))
	for i, x := range out {
		o32[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(B, op.d), tensor.WithBacking(o32)), nil
}

// BitsPerDim converts a log-likelihood (or bound) of an image of d values,
// in nats, to bits per dimension: -logp / (d ln 2), the unit of the
// discretized-likelihood literature.
func BitsPerDim(logp float64, d int) float64 { return -logp / (float64(d) * math.Ln2) }

// IsPixelLikelihood says whether the likelihood string names a likelihood
// of 8-bit levels (logistic, logistic-mix, logistic-rgb, categorical): a
// probability of the data's 256 levels, whose bound reads in bits per
// dimension.
func IsPixelLikelihood(s string) bool {
	name, _ := SplitPart(s)
	return name == Logistic || name == LogisticMix || name == LogisticRGB || name == Categorical
}
