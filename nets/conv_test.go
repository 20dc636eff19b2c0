package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convRef is the convolution or transposed convolution by direct loops,
// in PyTorch's definitions (Conv2d, ConvTranspose2d), followed by act.
func convRef(g Conv2DGeom, B int, x, w, b []float64, act Activation) []float64 {
	oh, ow := g.OutH(), g.OutW()
	y := make([]float64, B*g.OutSize())
	at := func(bi, c, i, j int) int { return ((bi*g.OutC+c)*oh+i)*ow + j }
	for bi := range B {
		for o := range g.OutC {
			for i := range oh {
				for j := range ow {
					y[at(bi, o, i, j)] = b[o]
				}
			}
		}
		for c := range g.InC {
			for kh := range g.KH {
				for kw := range g.KW {
					if g.Transposed {
						// Input pixel (ih, iw) spreads to (ih s - p + kh, iw s - p + kw).
						for ih := range g.InH {
							for iw := range g.InW {
								yi, yj := ih*g.Stride-g.Pad+kh, iw*g.Stride-g.Pad+kw
								if yi < 0 || yi >= oh || yj < 0 || yj >= ow {
									continue
								}
								xv := x[((bi*g.InC+c)*g.InH+ih)*g.InW+iw]
								for o := range g.OutC {
									y[at(bi, o, yi, yj)] += w[((c*g.OutC+o)*g.KH+kh)*g.KW+kw] * xv
								}
							}
						}
						continue
					}
					for o := range g.OutC {
						wv := w[((o*g.InC+c)*g.KH+kh)*g.KW+kw]
						for i := range oh {
							for j := range ow {
								xi, xj := i*g.Stride-g.Pad+kh, j*g.Stride-g.Pad+kw
								if xi < 0 || xi >= g.InH || xj < 0 || xj >= g.InW {
									continue
								}
								y[at(bi, o, i, j)] += wv * x[((bi*g.InC+c)*g.InH+xi)*g.InW+xj]
							}
						}
					}
				}
			}
		}
	}
	for i, v := range y {
		switch act {
		case ReLU:
			y[i] = max(v, 0)
		case ELU:
			if v <= 0 {
				y[i] = math.Expm1(v)
			}
		case Tanh:
			y[i] = math.Tanh(v)
		case Softplus:
			y[i] = softplus64(v)
		}
	}
	return y
}

func toDtype(v []float64, dt tensor.Dtype) any {
	if dt == tensor.Float64 {
		return append([]float64(nil), v...)
	}
	o := make([]float32, len(v))
	for i, f := range v {
		o[i] = float32(f)
	}
	return o
}

// convRun builds y = Conv2D(x, w, b) and the loss sum(y ⊙ r) in dtype dt and
// returns y and the gradients of the loss.
func convRun(t *testing.T, g Conv2DGeom, B int, act Activation, x, w, b, r []float64, dt tensor.Dtype, runs int) (y, dx, dw, db []float64) {
	t.Helper()
	gr := G.NewGraph()
	xn := G.NewMatrix(gr, dt, G.WithShape(B, g.InSize()), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(B, g.InSize()), tensor.WithBacking(toDtype(x, dt)))))
	ws := g.WeightShape()
	wn := G.NewTensor(gr, dt, 4, G.WithShape(ws...), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(ws...), tensor.WithBacking(toDtype(w, dt)))))
	bn := G.NewVector(gr, dt, G.WithShape(g.OutC), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(g.OutC), tensor.WithBacking(toDtype(b, dt)))))
	rn := G.NewMatrix(gr, dt, G.WithShape(B, g.OutSize()), G.WithName("r"), G.WithValue(tensor.New(tensor.WithShape(B, g.OutSize()), tensor.WithBacking(toDtype(r, dt)))))
	yn, err := Conv2D(xn, wn, bn, g, act, false)
	if err != nil {
		t.Fatal(err)
	}
	var yv G.Value
	G.Read(yn, &yv)
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(yn, rn))))
	if _, err := G.Grad(loss, xn, wn, bn); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(gr, G.BindDualValues(xn, wn, bn))
	defer vm.Close()
	for range runs { // later runs reuse every cached buffer
		for _, n := range []*G.Node{xn, wn, bn} {
			if gv, err := n.Grad(); err == nil && gv != nil {
				switch d := gv.Data().(type) {
				case []float32:
					clear(d)
				case []float64:
					clear(d)
				}
			}
		}
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		if yv == nil {
			t.Fatal("output not read")
		}
		y = append(y[:0], toF64(yv.Data())...)
		vm.Reset()
	}
	grad := func(n *G.Node) []float64 {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		return append([]float64(nil), toF64(gv.Data())...)
	}
	return y, grad(xn), grad(wn), grad(bn)
}

var convCases = []Conv2DGeom{
	{InC: 2, InH: 5, InW: 7, OutC: 3, KH: 3, KW: 3, Stride: 1, Pad: 1},
	{InC: 3, InH: 7, InW: 6, OutC: 2, KH: 4, KW: 4, Stride: 2, Pad: 1},
	{InC: 1, InH: 8, InW: 5, OutC: 4, KH: 2, KW: 3, Stride: 3, Pad: 0},
	{InC: 2, InH: 9, InW: 4, OutC: 2, KH: 5, KW: 5, Stride: 2, Pad: 2},
	{InC: 2, InH: 3, InW: 3, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: true},
	{InC: 3, InH: 4, InW: 5, OutC: 2, KH: 3, KW: 3, Stride: 2, Pad: 1, OutPadH: 1, OutPadW: 0, Transposed: true},
	{InC: 2, InH: 5, InW: 3, OutC: 2, KH: 3, KW: 2, Stride: 1, Pad: 0, Transposed: true},
	{InC: 1, InH: 2, InW: 3, OutC: 3, KH: 5, KW: 5, Stride: 3, Pad: 2, OutPadH: 2, OutPadW: 1, Transposed: true},
}

func randConv(rng *rand.Rand, g Conv2DGeom, B int) (x, w, b, r []float64) {
	ws := g.WeightShape()
	return randSlice(rng, B*g.InSize(), 1), randSlice(rng, ws[0]*ws[1]*ws[2]*ws[3], 0.5),
		randSlice(rng, g.OutC, 0.5), randSlice(rng, B*g.OutSize(), 1)
}

func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i])/(1+math.Abs(b[i])))
	}
	return m
}

// TestConv2DAgainstLoops checks outputs against direct loops and every
// gradient against central finite differences of the direct loops, for
// strides, paddings, rectangular kernels and odd sizes, each activation.
func TestConv2DAgainstLoops(t *testing.T) {
	acts := []Activation{"", ReLU, ELU, Tanh, Softplus}
	for ci, g := range convCases {
		act := acts[ci%len(acts)]
		t.Run(fmt.Sprintf("%v_%s", g, act), func(t *testing.T) {
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(ci), 9))
			B := 2
			x, w, b, r := randConv(rng, g, B)
			y, dx, dw, db := convRun(t, g, B, act, x, w, b, r, tensor.Float64, 2)
			want := convRef(g, B, x, w, b, act)
			if d := maxDiff(y, want); d > 1e-12 {
				t.Fatalf("output differs from direct loops by %g", d)
			}
			for _, c := range []struct {
				name string
				v    []float64
				got  []float64
			}{{"x", x, dx}, {"w", w, dw}, {"b", b, db}} {
				f := func(v []float64) float64 {
					saved := append([]float64(nil), c.v...)
					copy(c.v, v)
					yy := convRef(g, B, x, w, b, act)
					copy(c.v, saved)
					s := 0.0
					for i := range yy {
						s += yy[i] * r[i]
					}
					return s
				}
				num := fd.Gradient(nil, f, c.v, &fd.Settings{Formula: fd.Central, Step: 1e-6})
				if d := maxDiff(c.got, num); d > 1e-6 {
					t.Fatalf("d/d%s differs from finite differences by %g", c.name, d)
				}
			}
			// float32 (the GEMM of internal/kernels/gemm) agrees with float64.
			y32, dx32, dw32, db32 := convRun(t, g, B, act, x, w, b, r, tensor.Float32, 2)
			for _, c := range [][2][]float64{{y32, y}, {dx32, dx}, {dw32, dw}, {db32, db}} {
				if d := maxDiff(c[0], c[1]); d > 1e-4 {
					t.Fatalf("float32 differs from float64 by %g", d)
				}
			}
		})
	}
}

// TestConvTransposeIsAdjoint checks <conv(x), y> = <x, convT(y)> with the
// same weight and no bias.
func TestConvTransposeIsAdjoint(t *testing.T) {
	cases := append([]Conv2DGeom{
		{InC: 2, InH: 7, InW: 7, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1},
		{InC: 1, InH: 9, InW: 9, OutC: 2, KH: 5, KW: 5, Stride: 2, Pad: 2},
		{InC: 2, InH: 8, InW: 8, OutC: 3, KH: 3, KW: 3, Stride: 3, Pad: 1},
		{InC: 3, InH: 5, InW: 6, OutC: 2, KH: 3, KW: 2, Stride: 1, Pad: 1},
		{InC: 1, InH: 28, InW: 28, OutC: 32, KH: 4, KW: 4, Stride: 2, Pad: 1},
	}, convCases...)
	tested := 0
	for ci, g := range cases {
		if g.Transposed {
			continue
		}
		gt := Conv2DGeom{InC: g.OutC, InH: g.OutH(), InW: g.OutW(), OutC: g.InC, KH: g.KH, KW: g.KW,
			Stride: g.Stride, Pad: g.Pad, Transposed: true}
		gt.OutPadH, gt.OutPadW = g.InH-gt.OutH(), g.InW-gt.OutW()
		if gt.OutH() != g.InH || gt.OutW() != g.InW {
			t.Fatalf("%v: no transposed geometry back to %dx%d", g, g.InH, g.InW)
		}
		if err := gt.Validate(); err != nil {
			t.Fatal(err)
		}
		tested++
		rng := rand.New(rand.NewPCG(uint64(ci), 11))
		B := 3
		x, w, _, _ := randConv(rng, g, B)
		yv := randSlice(rng, B*g.OutSize(), 1)
		zero := func(n int) []float64 { return make([]float64, n) }
		cx, _, _, _ := convRun(t, g, B, "", x, w, zero(g.OutC), zero(B*g.OutSize()), tensor.Float64, 1)
		ty, _, _, _ := convRun(t, gt, B, "", yv, w, zero(gt.OutC), zero(B*gt.OutSize()), tensor.Float64, 1)
		var l, r float64
		for i := range cx {
			l += cx[i] * yv[i]
		}
		for i := range ty {
			r += x[i] * ty[i]
		}
		if math.Abs(l-r) > 1e-10*(1+math.Abs(l)) {
			t.Fatalf("%v: <conv x, y> = %v, <x, convT y> = %v", g, l, r)
		}
	}
	if tested < 9 {
		t.Fatalf("only %d shapes tested", tested)
	}
}

func TestConv2DGeomErrors(t *testing.T) {
	for _, g := range []Conv2DGeom{
		{InC: 0, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 1},
		{InC: 1, InH: 2, InW: 2, OutC: 1, KH: 3, KW: 3, Stride: 1},             // no output
		{InC: 1, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 1, Pad: 3},     // padding >= kernel
		{InC: 1, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 1, OutPadW: 1}, // output padding on a conv
		{InC: 1, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 2, OutPadH: 2, Transposed: true},
		{InC: 1, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 0},
		{InC: 1 << 20, InH: 5, InW: 5, OutC: 1, KH: 3, KW: 3, Stride: 1},
	} {
		if err := g.Validate(); err == nil {
			t.Errorf("%+v accepted", g)
		}
	}
	gr := G.NewGraph()
	g := convCases[0]
	x := G.NewMatrix(gr, tensor.Float64, G.WithShape(2, g.InSize()+1), G.WithName("x"))
	w := G.NewTensor(gr, tensor.Float64, 4, G.WithShape(g.WeightShape()...), G.WithName("w"))
	b := G.NewVector(gr, tensor.Float64, G.WithShape(g.OutC), G.WithName("b"))
	if _, err := Conv2D(x, w, b, g, "", false); err == nil {
		t.Error("wrong input width accepted")
	}
}

// TestIm2colOverwrites fills the column buffer with NaN first (a reused
// buffer holds the last run's values): every entry must be written, the
// padding with zeros; and col2im is im2col's adjoint.
func TestIm2colOverwrites(t *testing.T) {
	for _, g := range convCases {
		s, B := g.sides(), 3
		rng := rand.New(rand.NewPCG(2, 9))
		img := randSlice(rng, B*s.Cl*s.hwl(), 1)
		cols := make([]float64, s.colRows()*B*s.hws())
		for i := range cols {
			cols[i] = math.NaN()
		}
		im2col(s, B, img, cols)
		n := B * s.hws()
		for r := range s.colRows() {
			c, kh, kw := r/s.kk(), (r/s.KW)%s.KH, r%s.KW
			for b := range B {
				for oh := range s.Hs {
					for ow := range s.Ws {
						ih, iw := oh*s.S-s.P+kh, ow*s.S-s.P+kw
						want := 0.0
						if ih >= 0 && ih < s.Hl && iw >= 0 && iw < s.Wl {
							want = img[((b*s.Cl+c)*s.Hl+ih)*s.Wl+iw]
						}
						if got := cols[r*n+b*s.hws()+oh*s.Ws+ow]; got != want {
							t.Fatalf("%v: cols[%d, %d] = %v, want %v", g, r, b*s.hws()+oh*s.Ws+ow, got, want)
						}
					}
				}
			}
		}
		y := randSlice(rng, len(cols), 1)
		back := make([]float64, len(img))
		col2im(s, B, y, back)
		var l, r float64
		for i := range cols {
			l += cols[i] * y[i]
		}
		for i := range img {
			r += img[i] * back[i]
		}
		if math.Abs(l-r) > 1e-10*(1+math.Abs(l)) {
			t.Fatalf("%v: <im2col x, y> = %v, <x, col2im y> = %v", g, l, r)
		}
	}
}
