package amortized

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gaussPieces builds aux's sampler pieces and the standard normal prior's
// log p(z) on (B, L) inputs, fused (nets' Reparam, LogQEps, LogNormalAt,
// NoGradCols, LogStdNormal) or as the Builder's nodes (scaledNoise,
// logQEps, logQOffset, a 0/1 product, LogStdNormal), in one loss
//
//	Σ c ⊙ z + Σ k ⊙ (log q(eps; lv) - log N(a; m, e^rlv) - log N(z; 0, I)),
//	z = mu + e^{lv/2} ⊙ eps,
//
// with eps columns [1, 1+L) of a (B, L+2) noise matrix and a, lv, rlv,
// mu, m, z each with more than one consumer where aux's have, and returns z,
// the loss's log-density part and the gradients of mu, lv, a, m and rlv.
func gaussPieces(t *testing.T, dt tensor.Dtype, fused bool, B, L int, vals map[string][]float64) [][]float64 {
	t.Helper()
	cfg := smallConfig(dt.String(), "bernoulli")
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	bd := m.newBuilder(m.params)
	node := func(name string, rows, cols int) *G.Node {
		v := vals[name]
		var back any = append([]float64(nil), v...)
		if dt == tensor.Float32 {
			back = toFloat32(v)
		}
		if cols == 0 {
			return G.NewVector(bd.g, dt, G.WithShape(rows), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(rows), tensor.WithBacking(back))))
		}
		return G.NewMatrix(bd.g, dt, G.WithShape(rows, cols), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(back))))
	}
	noise, mu, lv, a, mn, rlv := node("noise", B, L+2), node("mu", B, L), node("lv", B, L), node("a", B, L), node("m", B, L), node("rlv", B, L)
	c, k := node("c", B, L), node("k", B, 0)
	var z, logq, logr, logp *G.Node
	if fused {
		eps := must(nets.NoGradCols(noise, 1, 1+L))
		z = must(nets.Reparam(mu, lv, eps))
		logq = must(nets.LogQEps(eps, lv))
		logr = must(nets.LogNormalAt(a, mn, rlv))
		logp = must(nets.LogStdNormal(z))
	} else {
		pick := make([]float64, (L+2)*L)
		for j := range L {
			pick[(1+j)*L+j] = 1
		}
		eps := must(G.Mul(noise, bd.Const("pick", pick, L+2, L)))
		z = must(G.Add(mu, bd.scaledNoise(lv, eps)))
		logq = bd.logQEps(eps, lv)
		logr = bd.logQOffset(must(G.Sub(a, mn)), rlv)
		logp = bd.LogStdNormal(z)
	}
	dens := must(G.Sub(must(G.Sub(logq, logr)), logp))
	// a and m also reach the loss directly, as a and r's mean do in aux
	extra := must(G.Sum(must(G.HadamardProd(must(G.HadamardProd(a, mn)), c))))
	loss := must(G.Add(must(G.Add(must(G.Sum(must(G.HadamardProd(z, c)))), must(G.Sum(must(G.HadamardProd(dens, k)))))), extra))
	grads, err := G.Grad(loss, mu, lv, a, mn, rlv)
	if err != nil {
		t.Fatal(err)
	}
	out := []*G.Node{z, dens}
	out = append(out, grads...)
	read := make([]G.Value, len(out))
	for i, n := range out {
		G.Read(n, &read[i])
	}
	vm := G.NewTapeMachine(bd.g)
	defer vm.Close()
	for range 2 { // the second run reuses the ops' buffers
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	res := make([][]float64, len(out))
	for i, v := range read {
		res[i] = valueFloats(v, nil)
	}
	return res
}

// nets' fused Gaussian pieces give the Builder's nodes' values and
// gradients bit for bit, in float32 and float64 (what keeps aux's golden
// hashes).
func TestGaussFusedMatchesBuilder(t *testing.T) {
	const B, L = 7, 5
	rng := rand.New(rand.NewPCG(31, 32))
	vals := map[string][]float64{}
	for name, n := range map[string]int{"noise": B * (L + 2), "mu": B * L, "lv": B * L, "a": B * L, "m": B * L, "rlv": B * L, "c": B * L, "k": B} {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(float32(rng.NormFloat64()))
		}
		vals[name] = v
	}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		fused := gaussPieces(t, dt, true, B, L, vals)
		nodes := gaussPieces(t, dt, false, B, L, vals)
		for i, name := range []string{"z", "log q - log r - log p", "dmu", "dlv", "da", "dm", "drlv"} {
			if len(fused[i]) != len(nodes[i]) {
				t.Fatalf("%v %s: %d values, nodes %d", dt, name, len(fused[i]), len(nodes[i]))
			}
			for j := range nodes[i] {
				if math.Float64bits(fused[i][j]) != math.Float64bits(nodes[i][j]) {
					t.Fatalf("%v %s[%d]: fused %v, nodes %v", dt, name, j, fused[i][j], nodes[i][j])
				}
			}
		}
	}
}
