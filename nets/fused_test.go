package nets

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func matNode(g *G.ExprGraph, name string, rows, cols int, v []float64) *G.Node {
	return G.NewMatrix(g, tensor.Float64, G.WithShape(rows, cols), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(v))))
}

// fdGradient is gonum's central-difference gradient of f with respect to
// the values in w, which f reads; w is restored afterwards.
func fdGradient(w []float64, f func() float64) []float64 {
	orig := slices.Clone(w)
	g := fd.Gradient(nil, func(x []float64) float64 {
		copy(w, x)
		return f()
	}, orig, &fd.Settings{Formula: fd.Central, Step: 1e-6})
	copy(w, orig)
	return g
}

func randSlice(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64() * scale
	}
	return v
}

// TestDenseInputGradient checks dX = dA W^T, which the MLP test (weights
// only) does not reach, and that ForwardData refuses a gradient to x.
func TestDenseInputGradient(t *testing.T) {
	for _, act := range []Activation{"", ReLU, Tanh, Softplus} {
		rng := rand.New(rand.NewPCG(2, 3))
		rows, in, outW := 3, 4, 5
		x, w, b := randSlice(rng, rows*in, 1), randSlice(rng, in*outW, 1), randSlice(rng, outW, 1)
		loss := func() float64 { // sum of squares of act(x w + b)
			s := 0.0
			for r := range rows {
				for j := range outW {
					v := b[j]
					for i := range in {
						v += x[r*in+i] * w[i*outW+j]
					}
					switch act {
					case ReLU:
						v = max(v, 0)
					case Tanh:
						v = math.Tanh(v)
					case Softplus:
						v = softplus64(v)
					}
					s += v * v
				}
			}
			return s
		}
		g := G.NewGraph()
		xn := matNode(g, "x", rows, in, x)
		wn := matNode(g, "w", in, outW, w)
		bn := G.NewVector(g, tensor.Float64, G.WithShape(outW), G.WithName("b"),
			G.WithValue(tensor.New(tensor.WithShape(outW), tensor.WithBacking(b))))
		y, err := Dense(xn, wn, bn, act, false)
		if err != nil {
			t.Fatal(err)
		}
		l := G.Must(G.Sum(G.Must(G.Square(y))))
		if _, err := G.Grad(l, xn, wn, bn); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(xn, wn, bn))
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			n    *G.Node
			v    []float64
		}{{"x", xn, x}, {"w", wn, w}, {"b", bn, b}} {
			gv, err := c.n.Grad()
			if err != nil {
				t.Fatal(err)
			}
			grad := gv.Data().([]float64)
			for j, fd := range fdGradient(c.v, loss) {
				if math.Abs(fd-grad[j]) > 1e-6*(1+math.Abs(fd)) {
					t.Fatalf("act %q: d/d%s[%d] = %v, finite difference %v", act, c.name, j, grad[j], fd)
				}
			}
		}
		vm.Close()

		// With dataInput, x is not differentiable: asking for its gradient fails loudly.
		g2 := G.NewGraph()
		xn2, wn2 := matNode(g2, "x", rows, in, x), matNode(g2, "w", in, outW, w)
		bn2 := G.NewVector(g2, tensor.Float64, G.WithShape(outW), G.WithName("b"),
			G.WithValue(tensor.New(tensor.WithShape(outW), tensor.WithBacking(b))))
		y2, err := Dense(xn2, wn2, bn2, act, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := G.Grad(G.Must(G.Sum(y2)), xn2); err == nil {
			t.Fatalf("act %q: gradient to a data input was not refused", act)
		}
	}
}

// bernoulliRef is sum_j x l - log(1 + e^l) per row, in float64.
func bernoulliRef(x, l []float64, rows, cols int) []float64 {
	s := make([]float64, rows)
	for i := range rows {
		for j := range cols {
			v := l[i*cols+j]
			s[i] += x[i*cols+j]*v - softplus64(v)
		}
	}
	return s
}

func TestBernoulliLogLik(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows, cols := 4, 300 // wide enough to take the parallel path
	x := make([]float64, rows*cols)
	for i := range x {
		x[i] = float64(rng.IntN(2))
	}
	l := randSlice(rng, rows*cols, 6)
	l[0], l[1], l[2] = 80, -80, 0 // saturated and central logits
	rowW := randSlice(rng, rows, 1)
	loss := func() float64 {
		s := 0.0
		for i, v := range bernoulliRef(x, l, rows, cols) {
			s += rowW[i] * v
		}
		return s
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := G.NewGraph()
		mk := func(name string, v []float64, shape ...int) *G.Node {
			var back any = v
			if dt == tensor.Float32 {
				v32 := make([]float32, len(v))
				for i, f := range v {
					v32[i] = float32(f)
				}
				back = v32
			}
			if len(shape) == 1 {
				return G.NewVector(g, dt, G.WithShape(shape...), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(back))))
			}
			return G.NewMatrix(g, dt, G.WithShape(shape...), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(back))))
		}
		xn, ln, wn := mk("x", x, rows, cols), mk("l", l, rows, cols), mk("rw", rowW, rows)
		ll, err := BernoulliLogLik(xn, ln)
		if err != nil {
			t.Fatal(err)
		}
		var llv G.Value
		G.Read(ll, &llv)
		obj := G.Must(G.Mul(wn, ll))
		if _, err := G.Grad(obj, ln); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(ln))
		tol := 1e-12
		if dt == tensor.Float32 {
			tol = 2e-6
		}
		want := bernoulliRef(x, l, rows, cols)
		for run := range 2 { // a second run on the same machine gives the same results
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				got := toF64(llv.Data())[i]
				if math.Abs(got-want[i]) > tol*math.Abs(want[i])+tol {
					t.Fatalf("%v run %d: row %d = %v, want %v", dt, run, i, got, want[i])
				}
			}
			gv, err := ln.Grad()
			if err != nil {
				t.Fatal(err)
			}
			grad := toF64(gv.Data())
			for j, fd := range fdGradient(l, loss) {
				if math.Abs(fd-grad[j]) > 1e-5+tol*10 {
					t.Fatalf("%v run %d: d/dl[%d] = %v, finite difference %v", dt, run, j, grad[j], fd)
				}
			}
			vm.Reset()
			// The tape machine adds into bound gradients; zero them as trainers do.
			switch d := gv.Data().(type) {
			case []float64:
				clear(d)
			case []float32:
				clear(d)
			}
		}
		vm.Close()
	}
}

func toF64(d any) []float64 {
	switch v := d.(type) {
	case []float64:
		return v
	case []float32:
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f)
		}
		return out
	}
	return nil
}

// TestDenseFloat32MatchesFloat64 runs one layer in both dtypes (the float32
// path has its own softplus and calls Sgemm).
func TestDenseFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	rows, in, outW := 130, 33, 17
	x, w, b := randSlice(rng, rows*in, 1), randSlice(rng, in*outW, 0.3), randSlice(rng, outW, 1)
	for _, act := range []Activation{"", ReLU, Tanh, Softplus} {
		var res [2][]float64
		for k, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			g := G.NewGraph()
			conv := func(v []float64) any {
				if dt == tensor.Float64 {
					return v
				}
				o := make([]float32, len(v))
				for i, f := range v {
					o[i] = float32(f)
				}
				return o
			}
			xn := G.NewMatrix(g, dt, G.WithShape(rows, in), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(rows, in), tensor.WithBacking(conv(x)))))
			wn := G.NewMatrix(g, dt, G.WithShape(in, outW), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(in, outW), tensor.WithBacking(conv(w)))))
			bn := G.NewVector(g, dt, G.WithShape(outW), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(outW), tensor.WithBacking(conv(b)))))
			y, err := Dense(xn, wn, bn, act, true)
			if err != nil {
				t.Fatal(err)
			}
			var yv G.Value
			G.Read(y, &yv)
			vm := G.NewTapeMachine(g)
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			res[k] = toF64(yv.Data())
			vm.Close()
		}
		for i := range res[0] {
			if math.Abs(res[0][i]-res[1][i]) > 1e-5*(1+math.Abs(res[0][i])) {
				t.Fatalf("act %q: float32 %v, float64 %v at %d", act, res[1][i], res[0][i], i)
			}
		}
	}
}

// TestReusedGraphMatchesFreshGraph runs a float32 two-layer graph with the
// Bernoulli term on one input, then (after Reset, as training does) on
// another: the fused ops hand back the previous run's output tensors, and
// the loss and gradients equal, bit for bit, those of a fresh graph run
// once on the second input.
func TestReusedGraphMatchesFreshGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	rows, in, hid := 6, 40, 24 // 40*24 weights: the vector path and a tail
	w1, b1 := randSlice(rng, in*hid, 0.3), randSlice(rng, hid, 0.1)
	w2, b2 := randSlice(rng, hid*in, 0.3), randSlice(rng, in, 0.1)
	x1, x2 := make([]float64, rows*in), make([]float64, rows*in)
	for i := range x1 {
		x1[i], x2[i] = float64(rng.IntN(2)), float64(rng.IntN(2))
	}
	f32 := func(v []float64) []float32 {
		out := make([]float32, len(v))
		for i, f := range v {
			out[i] = float32(f)
		}
		return out
	}
	type rig struct {
		vm     G.VM
		x      *tensor.Dense
		loss   G.Value
		params []*G.Node
	}
	build := func() *rig {
		g := G.NewGraph()
		mk := func(name string, v []float64, shape ...int) *G.Node {
			val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f32(v)))
			if len(shape) == 1 {
				return G.NewVector(g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(val))
			}
			return G.NewMatrix(g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(val))
		}
		r := &rig{}
		xn := mk("x", make([]float64, rows*in), rows, in)
		r.x = xn.Value().(*tensor.Dense)
		r.params = []*G.Node{mk("w1", w1, in, hid), mk("b1", b1, hid), mk("w2", w2, hid, in), mk("b2", b2, in)}
		h := G.Must(Dense(xn, r.params[0], r.params[1], ReLU, true))
		l := G.Must(Dense(h, r.params[2], r.params[3], "", false))
		loss := G.Must(G.Neg(G.Must(G.Sum(G.Must(BernoulliLogLik(xn, l))))))
		G.Read(loss, &r.loss)
		if _, err := G.Grad(loss, r.params...); err != nil {
			t.Fatal(err)
		}
		r.vm = G.NewTapeMachine(g, G.BindDualValues(r.params...))
		return r
	}
	run := func(r *rig, x []float64) (float32, [][]float32) {
		copy(r.x.Float32s(), f32(x))
		for _, p := range r.params {
			if gv, err := p.Grad(); err == nil {
				if d, ok := gv.(*tensor.Dense); ok {
					d.Zero() // the tape machine adds into gradients
				}
			}
		}
		if err := r.vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		r.vm.Reset()
		var grads [][]float32
		for _, p := range r.params {
			gv, err := p.Grad()
			if err != nil {
				t.Fatal(err)
			}
			grads = append(grads, append([]float32(nil), gv.Data().([]float32)...))
		}
		return r.loss.Data().(float32), grads
	}
	reused := build()
	run(reused, x1)
	loss, grads := run(reused, x2)
	fresh := build()
	wantLoss, wantGrads := run(fresh, x2)
	if math.Float32bits(loss) != math.Float32bits(wantLoss) {
		t.Fatalf("loss %v, fresh graph %v", loss, wantLoss)
	}
	for i := range grads {
		for j := range grads[i] {
			if math.Float32bits(grads[i][j]) != math.Float32bits(wantGrads[i][j]) {
				t.Fatalf("gradient of %s[%d] = %v, fresh graph %v", reused.params[i].Name(), j, grads[i][j], wantGrads[i][j])
			}
		}
	}
}

// TestSigmoid: the fused sigmoid against the float64 formula, in both
// dtypes, on a matrix wide enough to take the parallel path, saturated
// logits included.
func TestSigmoid(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	rows, cols := 4, 300
	l := randSlice(rng, rows*cols, 6)
	l[0], l[1], l[2] = 80, -80, 0
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := G.NewGraph()
		var back any = l
		tol := 1e-15
		if dt == tensor.Float32 {
			l32 := make([]float32, len(l))
			for i, f := range l {
				l32[i] = float32(f)
			}
			back, tol = l32, 4e-7
		}
		ln := G.NewMatrix(g, dt, G.WithShape(rows, cols), G.WithName("l"), G.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(back))))
		s, err := Sigmoid(ln)
		if err != nil {
			t.Fatal(err)
		}
		var sv G.Value
		G.Read(s, &sv)
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		for i, got := range toF64(sv.Data()) {
			x := l[i]
			if dt == tensor.Float32 {
				x = float64(float32(x))
			}
			if want := sigmoid64(x); math.Abs(got-want) > tol*want+0x1p-126 {
				t.Fatalf("%v: sigmoid(%v) = %v, want %v", dt, x, got, want)
			}
		}
	}
}

// TestProductBound: after a run, a dense layer's weight gradient XᵀdY
// carries a bound on its entries (at least their largest magnitude), +Inf
// when an operand is huge or NaN, and other nodes (the bias gradient)
// carry none.
func TestProductBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	rows, in, outW := 70, 13, 9
	for _, tc := range []struct {
		name string
		big  float32 // planted in x (0: none)
		inf  bool    // want +Inf
	}{{"plain", 0, false}, {"huge", 1 << 60, true}, {"nan", float32(math.NaN()), true}} {
		g := G.NewGraph()
		x := make([]float32, rows*in)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
		}
		if tc.big != 0 {
			x[17] = tc.big
		}
		w, b := make([]float32, in*outW), make([]float32, outW)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		xn := G.NewMatrix(g, tensor.Float32, G.WithShape(rows, in), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(rows, in), tensor.WithBacking(x))))
		wn := G.NewMatrix(g, tensor.Float32, G.WithShape(in, outW), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(in, outW), tensor.WithBacking(w))))
		bn := G.NewVector(g, tensor.Float32, G.WithShape(outW), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(outW), tensor.WithBacking(b))))
		y, err := Dense(xn, wn, bn, "", true)
		if err != nil {
			t.Fatal(err)
		}
		loss := G.Must(G.Sum(G.Must(G.Square(y))))
		gs, err := G.Grad(loss, wn, bn)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ProductBound(gs[0]); ok {
			t.Fatalf("%s: a bound before any run", tc.name)
		}
		var dw G.Value
		G.Read(gs[0], &dw)
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		bound, ok := ProductBound(gs[0])
		if !ok {
			t.Fatalf("%s: no bound for the weight gradient", tc.name)
		}
		if _, ok := ProductBound(gs[1]); ok {
			t.Fatalf("%s: a bound for the bias gradient", tc.name)
		}
		if tc.inf != math.IsInf(bound, 1) {
			t.Fatalf("%s: bound %v", tc.name, bound)
		}
		if !tc.inf {
			for i, v := range dw.Data().([]float32) {
				if !(math.Abs(float64(v)) <= bound) {
					t.Fatalf("%s: |dW[%d]| = %v above the bound %v", tc.name, i, v, bound)
				}
			}
		}
		vm.Close()
	}
}
