package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/govae/govae/flows"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// stepKind builds one planar or radial step either fused (the public
// constructors) or node by node from gorgonia primitives.
type stepKind struct {
	s     spec
	nodes func(p0, p1, p2, z *G.Node) (*G.Node, *G.Node, error)
}

var stepKinds = map[string]stepKind{
	"planar": {planar, flows.PlanarNodes},
	"radial": {radial, flows.RadialNodes},
}

// chain builds the steps (kinds in order) on z, fused through Compose or
// node by node with the log-determinants summed.
func chain(t testing.TB, kinds []string, ps [][]*G.Node, z *G.Node, fused bool) (out, logDet *G.Node) {
	if fused {
		fs := make([]flows.Flow, len(kinds))
		for k, name := range kinds {
			f, err := stepKinds[name].s.build(ps[k])
			if err != nil {
				t.Fatal(err)
			}
			fs[k] = f
		}
		out, logDet, err := flows.Compose(fs...).Forward(z)
		if err != nil {
			t.Fatal(err)
		}
		return out, logDet
	}
	out = z
	for k, name := range kinds {
		y, ld, err := stepKinds[name].nodes(ps[k][0], ps[k][1], ps[k][2], out)
		if err != nil {
			t.Fatal(err)
		}
		out = y
		if logDet == nil {
			logDet = ld
		} else {
			logDet = must(G.Add(logDet, ld))
		}
	}
	return out, logDet
}

// The fused planar and radial steps (one node for the whole composition)
// compute what the node-by-node compositions of gorgonia primitives do:
// outputs, log-determinants and the gradients of sum(out ⊙ c) + sum(logDet)
// with respect to z and every parameter, at random and boundary
// parameters.
func TestFusedMatchesNodeByNode(t *testing.T) {
	const B, L = 5, 4
	for _, kinds := range [][]string{
		{"planar"}, {"radial"},
		{"planar", "planar", "planar", "planar"},
		{"radial", "planar", "radial", "planar", "radial"},
	} {
		for gi := range 2 {
			t.Run(fmt.Sprintf("%v/gen%d", kinds, gi), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(len(kinds)), uint64(gi)))
				zv := randn(rng, B*L, 1.5)
				cv := randn(rng, B*L, 1) // weights so out's gradient is not all ones
				raw := make([][][]float64, len(kinds))
				for k, name := range kinds {
					raw[k] = stepKinds[name].s.gens[gi].draw(rng, zv, B, L)
				}
				type result struct{ out, ld []float64 }
				var res [2]result
				var grads [2][][]float64
				for fi, fused := range []bool{true, false} {
					r := newRig(t)
					z := r.input(zv, B, L)
					ps := make([][]*G.Node, len(kinds))
					wrt := []*G.Node{z}
					for k, name := range kinds {
						for a, shape := range stepKinds[name].s.shapes(B, L) {
							n := r.input(raw[k][a], shape...)
							ps[k] = append(ps[k], n)
							wrt = append(wrt, n)
						}
					}
					out, ld := chain(t, kinds, ps, z, fused)
					loss := must(G.Add(must(G.Sum(must(G.HadamardProd(out, r.input(cv, B, L))))), must(G.Sum(ld))))
					gs, err := G.Grad(loss, wrt...)
					if err != nil {
						t.Fatal(err)
					}
					r.watch(out, ld)
					r.watch(gs...)
					r.run()
					res[fi] = result{r.get(out), r.get(ld)}
					for _, g := range gs {
						grads[fi] = append(grads[fi], r.get(g))
					}
				}
				near := func(what string, a, b []float64, tol float64) {
					for i := range a {
						if math.Abs(a[i]-b[i]) > tol*(1+math.Abs(b[i])) {
							t.Errorf("%s[%d]: fused %.15g, node by node %.15g", what, i, a[i], b[i])
						}
					}
				}
				near("out", res[0].out, res[1].out, 1e-12)
				near("logDet", res[0].ld, res[1].ld, 1e-12)
				for a := range grads[0] {
					// Gorgonia differentiates softplus as sigmoid everywhere,
					// the fused ops as the function computed (1 above 16): they
					// differ by e^-16 at most.
					near(fmt.Sprintf("grad %d", a), grads[0][a], grads[1][a], 1e-9)
				}
			})
		}
	}
}

// In float32 graphs the fused ops (computing in float64 inside) agree with
// the float64 graph to float32 rounding, values and gradients, for every
// fusable kind.
func TestFusedFloat32(t *testing.T) {
	const B, L = 4, 3
	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			zv := randn(rng, B*L, 1)
			raw := s.gens[0].draw(rng, zv, B, L)
			var outs, lds [2][]float64
			var grads [2][][]float64
			for di, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				g := G.NewGraph()
				in := func(name string, v []float64, shape ...int) *G.Node {
					var back any = slices.Clone(v)
					if dt == tensor.Float32 {
						f := make([]float32, len(v))
						for i, x := range v {
							f[i] = float32(x)
						}
						back = f
					}
					val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(back))
					return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithValue(val), G.WithName(name))
				}
				z := in("z", zv, B, L)
				var ps []*G.Node
				for a, shape := range s.shapes(B, L) {
					ps = append(ps, in(fmt.Sprintf("p%d", a), raw[a], shape...))
				}
				f, err := s.build(ps)
				if err != nil {
					t.Fatal(err)
				}
				out, ld, err := f.Forward(z)
				if err != nil {
					t.Fatal(err)
				}
				loss := must(G.Add(must(G.Sum(out)), must(G.Sum(ld))))
				gs, err := G.Grad(loss, append([]*G.Node{z}, ps...)...)
				if err != nil {
					t.Fatal(err)
				}
				vals := make([]G.Value, len(gs)+2)
				G.Read(out, &vals[0])
				G.Read(ld, &vals[1])
				for i, gn := range gs {
					G.Read(gn, &vals[i+2])
				}
				vm := G.NewTapeMachine(g)
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				vm.Close()
				f64 := func(v G.Value) []float64 {
					switch d := v.Data().(type) {
					case []float32:
						o := make([]float64, len(d))
						for i, x := range d {
							o[i] = float64(x)
						}
						return o
					case []float64:
						return slices.Clone(d)
					}
					t.Fatalf("value of type %T", v.Data())
					return nil
				}
				outs[di], lds[di] = f64(vals[0]), f64(vals[1])
				for _, v := range vals[2:] {
					grads[di] = append(grads[di], f64(v))
				}
			}
			near := func(what string, a, b []float64) {
				for i := range a {
					if math.Abs(a[i]-b[i]) > 1e-4*(1+math.Abs(a[i])) {
						t.Errorf("%s[%d]: float64 %.8g, float32 %.8g", what, i, a[i], b[i])
					}
				}
			}
			near("out", outs[0], outs[1])
			near("logDet", lds[0], lds[1])
			for a := range grads[0] {
				near(fmt.Sprintf("grad %d", a), grads[0][a], grads[1][a])
			}
		})
	}
}

// benchFlow times one forward and backward pass of K steps of a kind on a
// (B, L) float32 batch, fused or node by node. The ratio of the two is the
// speed-up of the fused ops; BENCHMARKS.md quotes it.
func benchFlow(b *testing.B, kind string, K int, fused bool) {
	const B, L = 128, 20
	rng := rand.New(rand.NewPCG(1, 2))
	g := G.NewGraph()
	in := func(name string, n int, shape ...int) *G.Node {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
	}
	z := in("z", B*L, B, L)
	kinds := make([]string, K)
	ps := make([][]*G.Node, K)
	wrt := []*G.Node{z}
	for k := range K {
		kinds[k] = kind
		for a, shape := range stepKinds[kind].s.shapes(B, L) {
			n := 1
			for _, d := range shape {
				n *= d
			}
			p := in(fmt.Sprintf("p%d.%d", k, a), n, shape...)
			ps[k] = append(ps[k], p)
			wrt = append(wrt, p)
		}
	}
	out, ld := chain(b, kinds, ps, z, fused)
	loss := must(G.Add(must(G.Sum(out)), must(G.Sum(ld))))
	if _, err := G.Grad(loss, wrt...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
	b.ReportMetric(float64(B)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkFlow(b *testing.B) {
	for _, kind := range []string{"planar", "radial"} {
		for _, K := range []int{1, 16} {
			for _, fused := range []bool{true, false} {
				name := "nodes"
				if fused {
					name = "fused"
				}
				b.Run(fmt.Sprintf("%s/K=%d/%s", kind, K, name), func(b *testing.B) { benchFlow(b, kind, K, fused) })
			}
		}
	}
}

// BenchmarkSylvester times one forward and backward pass of K Sylvester or
// Householder steps on a (128, 20) float32 batch (orthogonal: M = 10).
func BenchmarkSylvester(b *testing.B) {
	for _, s := range []spec{orthoSylvesterThin, householderSylvester, triangularSylvester(true), householderFlow} {
		for _, K := range []int{4, 16} {
			b.Run(fmt.Sprintf("%s/K=%d", s.name, K), func(b *testing.B) {
				const B, L = 128, 20
				rng := rand.New(rand.NewPCG(1, 2))
				g := G.NewGraph()
				in := func(name string, shape ...int) *G.Node {
					n := 1
					for _, d := range shape {
						n *= d
					}
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(rng.NormFloat64())
					}
					return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name),
						G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
				}
				z := in("z", B, L)
				wrt := []*G.Node{z}
				fs := make([]flows.Flow, K)
				for k := range K {
					var ps []*G.Node
					for a, shape := range s.shapes(B, L) {
						ps = append(ps, in(fmt.Sprintf("p%d.%d", k, a), shape...))
					}
					f, err := s.build(ps)
					if err != nil {
						b.Fatal(err)
					}
					fs[k] = f
					wrt = append(wrt, ps...)
				}
				out, ld, err := flows.Compose(fs...).Forward(z)
				if err != nil {
					b.Fatal(err)
				}
				loss := must(G.Add(must(G.Sum(out)), must(G.Sum(ld))))
				if _, err := G.Grad(loss, wrt...); err != nil {
					b.Fatal(err)
				}
				vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
				defer vm.Close()
				for b.Loop() {
					if err := vm.RunAll(); err != nil {
						b.Fatal(err)
					}
					vm.Reset()
				}
				b.ReportMetric(float64(B)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
