package amortized

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

// evalNodes builds nodes on a fresh graph of m's parameters, runs it and
// returns the values of the outputs.
func evalNodes(t *testing.T, m *Model, build func(bd *Builder) []*G.Node) [][]float64 {
	t.Helper()
	bd := m.newBuilder(m.params)
	var outs []*G.Node
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("building: %v", r.(buildError).err)
			}
		}()
		outs = build(bd)
	}()
	vals := make([]G.Value, len(outs))
	for i, n := range outs {
		G.Read(n, &vals[i])
	}
	vm := G.NewTapeMachine(bd.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := make([][]float64, len(outs))
	for i, v := range vals {
		res[i] = valueFloats(v, nil)
	}
	return res
}

func constRows(bd *Builder, name string, v []float64, rows, cols int) *G.Node {
	n := bd.input(name, rows, cols)
	setRows64(n, v)
	return n
}

// TestLikelihoodsAgainstDirectEvaluation: log p(x|z) and the mean of each
// built-in likelihood against the densities written out per pixel.
func TestLikelihoodsAgainstDirectEvaluation(t *testing.T) {
	const B, D = 3, 5
	rng := rand.New(rand.NewPCG(4, 4))
	draw := func(scale float64) []float64 {
		v := make([]float64, B*D)
		for i := range v {
			v[i] = scale * rng.NormFloat64()
		}
		return v
	}
	x := make([]float64, B*D)
	for i := range x {
		x[i] = rng.Float64()
	}
	h1, h2 := draw(2), draw(1)
	for _, lik := range []string{Bernoulli, Gaussian} {
		m, err := New(Config{DataDim: D, Latent: 2, Likelihood: lik, Dtype: "float64"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		names := m.lik.Heads(m.cfg)
		got := evalNodes(t, m, func(bd *Builder) []*G.Node {
			hv := HeadValues{names[0].Name: constRows(bd, "h1", h1, B, D)}
			if len(names) > 1 {
				hv[names[1].Name] = constRows(bd, "h2", h2, B, D)
			}
			d := m.lik.Bind(bd, hv)
			return []*G.Node{d.LogProb(constRows(bd, "x", x, B, D)), d.Mean()}
		})
		for b := range B {
			var want float64
			for j := range D {
				i := b*D + j
				var mean float64
				if lik == Bernoulli {
					p := 1 / (1 + math.Exp(-h1[i]))
					want += x[i]*math.Log(p) + (1-x[i])*math.Log(1-p)
					mean = p
				} else {
					mean = 1 / (1 + math.Exp(-h1[i]))
					v := math.Log1p(math.Exp(h2[i])) + m.cfg.GaussianMinVar
					want += -0.5 * (math.Log(2*math.Pi*v) + (x[i]-mean)*(x[i]-mean)/v)
				}
				if math.Abs(got[1][i]-mean) > 1e-12 {
					t.Errorf("%s: mean[%d] = %v, want %v", lik, i, got[1][i], mean)
				}
			}
			if math.Abs(got[0][b]-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("%s: log p(x|z) row %d = %v, want %v", lik, b, got[0][b], want)
			}
		}
	}
	if (bernoulli{}).CheckValue(1.5) == nil || (bernoulli{}).CheckValue(0.5) != nil || (gaussianLik{}).CheckValue(-3) != nil {
		t.Error("CheckValue: want [0,1] for bernoulli, anything finite for gaussian")
	}
}
