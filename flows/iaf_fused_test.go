package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// iafReLUCase is the VAE families' step: one ReLU hidden layer and a
// context, which the fused chain op (iafChainOp) computes.
var iafReLUCase = iafCase{dim: 4, context: 3, hidden: []int{7}, act: nets.ReLU, steps: 3}

// iafValues runs three IAF steps (iafReLUCase) in dtype dt, fused or node
// by node, and returns f(z), log|det| and the gradients of
// Σ log|det| + Σ w ⊙ f(z) with respect to z, h and every parameter, as
// float64. Parameters and inputs are the same for both dtypes (float32
// values).
func iafValues(t *testing.T, dt tensor.Dtype, fused bool) (vals [][]float64, names []string) {
	t.Helper()
	defer func(old bool) { *flows.FuseIAFStep = old }(*flows.FuseIAFStep)
	*flows.FuseIAFStep = fused
	const B = 5
	c := iafReLUCase
	rng := rand.New(rand.NewPCG(3, 4))
	draw := func(n int, scale float64) tensor.Tensor {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(float32(scale * rng.NormFloat64()))
		}
		if dt == tensor.Float32 {
			v32 := make([]float32, n)
			for i, x := range v {
				v32[i] = float32(x)
			}
			return tensor.New(tensor.WithBacking(v32))
		}
		return tensor.New(tensor.WithBacking(v))
	}
	ps, err := nets.NewParams(dt)
	if err != nil {
		t.Fatal(err)
	}
	var steps []flows.IAF
	for k := range c.steps {
		f, err := flows.NewIAF(ps, fmt.Sprintf("iaf%d", k), c.dim, c.hidden, c.context, c.act, k%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, f)
	}
	for _, p := range ps.All() {
		src := draw(p.Value.Shape().TotalSize(), 0.8)
		switch dt {
		case tensor.Float32:
			copy(p.Float32s(), src.Data().([]float32))
		default:
			copy(p.Float64s(), src.Data().([]float64))
		}
	}
	g := G.NewGraph()
	input := func(name string, rows, cols int, scale float64) *G.Node {
		v := draw(rows*cols, scale)
		v.Reshape(rows, cols)
		return G.NewMatrix(g, dt, G.WithShape(rows, cols), G.WithName(name), G.WithValue(v))
	}
	z, h, w := input("z", B, c.dim, 1.5), input("h", B, c.context, 1), input("w", B, c.dim, 1)
	b := ps.Bind(g)
	fs := make([]flows.Flow, len(steps))
	for k, f := range steps {
		fs[k] = f.Bind(b, h)
	}
	out, ld, err := flows.Compose(fs...).Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	chains := 0
	for _, n := range g.AllNodes() {
		if n.Op() != nil && strings.HasPrefix(n.Op().String(), "iafChain[") {
			chains++
		}
	}
	if want := map[bool]int{true: 1, false: 0}[fused]; chains != want {
		t.Fatalf("fused=%t: %d fused chain nodes for %d steps, want %d", fused, chains, c.steps, want)
	}
	loss := must(G.Add(must(G.Sum(ld)), must(G.Sum(must(G.HadamardProd(w, out))))))
	wrt := append(G.Nodes{z, h}, b.Nodes()...)
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	read := append(G.Nodes{out, ld}, grads...)
	vs := make([]G.Value, len(read))
	for i, n := range read {
		G.Read(n, &vs[i])
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range 2 { // the second run reuses the nodes' buffers
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	names = []string{"f(z)", "log|det|"}
	for _, n := range wrt {
		names = append(names, "d/d"+n.Name())
	}
	for _, v := range vs {
		switch d := v.Data().(type) {
		case []float32:
			f := make([]float64, len(d))
			for i, x := range d {
				f[i] = float64(x)
			}
			vals = append(vals, f)
		case []float64:
			vals = append(vals, append([]float64(nil), d...))
		}
	}
	return vals, names
}

// The fused IAF chain (three steps, one node) gives the node-by-node
// steps' forward values bit for bit, and their gradients: in float64 to
// rounding, in float32 to float32 precision (the gate's backward pass uses
// forward's float32 σ and 1 - σ where the gate node recomputes them in
// float64).
func TestIAFFusedChainMatchesNodes(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			fused, names := iafValues(t, dt, true)
			nodes, _ := iafValues(t, dt, false)
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 2e-5
			}
			for a := range fused {
				for i, want := range nodes[a] {
					got := fused[a][i]
					if a < 2 && got != want {
						t.Errorf("%s[%d]: fused %v, nodes %v, want bit for bit", names[a], i, got, want)
					}
					if math.Abs(got-want) > tol*(1+math.Abs(want)) {
						t.Errorf("%s[%d]: fused %.9g, nodes %.9g", names[a], i, got, want)
					}
				}
			}
		})
	}
}
