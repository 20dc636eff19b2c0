package nets

import (
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/internal/kernels/simd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convPeerStep builds one training step of the peer's conv VAE at batch B
// in float32: encoder, mean and log-variance heads, z = mu + eps ⊙
// e^(lv/2), decoder, Bernoulli log-likelihood, analytic KL, and the
// gradients of the negative ELBO with respect to every parameter; the
// benchmark adds an Adam step (internal/kernels/simd's, as the trainer's).
func convPeerStep(b *testing.B, B int) (*G.ExprGraph, *Binding, *Params) {
	ps, _ := NewParams(tensor.Float32)
	es, _ := ParseConvSpec(ConvPeerEncoder)
	ds, _ := ParseConvSpec(ConvPeerDecoder)
	img, L := ImageShape{1, 28, 28}, 32
	enc, err := NewConvEncoder(ps, "encoder", es, img)
	if err != nil {
		b.Fatal(err)
	}
	mu, _ := NewLinear(ps, "encoder.mean", 256, L)
	lv, _ := NewLinear(ps, "encoder.logvar", 256, L)
	dec, err := NewConvDecoder(ps, "decoder", ds, L, img)
	if err != nil {
		b.Fatal(err)
	}
	head, _ := dec.NewHead(ps, "decoder.logits", 1)
	rng := rand.New(rand.NewPCG(1, 1))
	ps.InitUniform(rng)

	g := G.NewGraph()
	bd := ps.Bind(g)
	xs := make([]float32, B*784)
	for i := range xs {
		xs[i] = float32(rng.IntN(2))
	}
	es32 := make([]float32, B*L)
	for i := range es32 {
		es32[i] = float32(rng.NormFloat64())
	}
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(B, 784), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(B, 784), tensor.WithBacking(xs))))
	eps := G.NewMatrix(g, tensor.Float32, G.WithShape(B, L), G.WithName("eps"), G.WithValue(tensor.New(tensor.WithShape(B, L), tensor.WithBacking(es32))))
	h := G.Must(enc.ForwardData(bd, x))
	m := G.Must(mu.Forward(bd, h))
	v := G.Must(lv.Forward(bd, h))
	half := G.NewConstant(float32(0.5))
	z := G.Must(G.Add(m, G.Must(G.HadamardProd(eps, G.Must(G.Exp(G.Must(G.Mul(v, half))))))))
	f := G.Must(dec.Forward(bd, z))
	logits := G.Must(head.Forward(bd, f))
	ll := G.Must(BernoulliLogLik(x, logits))
	// KL = 1/2 sum(mu² + e^lv - 1 - lv)
	kl := G.Must(G.Mul(half, G.Must(G.Sum(G.Must(G.Sub(G.Must(G.Add(G.Must(G.Square(m)), G.Must(G.Exp(v)))), G.Must(G.Add(v, G.NewConstant(float32(1))))))))))
	loss := G.Must(G.Sub(kl, G.Must(G.Sum(ll))))
	if _, err := G.Grad(loss, bd.Nodes()...); err != nil {
		b.Fatal(err)
	}
	return g, bd, ps
}

// BenchmarkConvPeerStep is forward and backward of a training step of the
// peer architecture at batch 128 (images/s = 128 / seconds per op).
func BenchmarkConvPeerStep(b *testing.B) {
	const B = 128
	g, bd, ps := convPeerStep(b, B)
	vm := G.NewTapeMachine(g, G.BindDualValues(bd.Nodes()...))
	defer vm.Close()
	m, v := ps.ZerosLike(), ps.ZerosLike()
	c := simd.NewAdamConsts(0.9, 0.999, 1e-3, 1, 1e-8, 0)
	step := func() {
		for _, n := range bd.Nodes() {
			if gv, err := n.Grad(); err == nil && gv != nil {
				clear(gv.Data().([]float32))
			}
		}
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		for i, n := range bd.Nodes() {
			gv, _ := n.Grad()
			simd.Adam(ps.All()[i].Float32s(), gv.Data().([]float32), m.All()[i].Float32s(), v.All()[i].Float32s(), &c)
		}
		vm.Reset()
	}
	step()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "images/s")
}

// convLayersGraph is the peer encoder's two convolutions with ReLU, forward
// and backward, built either with Conv2D or with gorgonia's own Conv2d (on
// 4-D NCHW nodes; gorgonia has no transposed convolution, so only the
// encoder's layers compare). Biases are left out of both.
func convLayersGraph(b *testing.B, B int, ours bool) (*G.ExprGraph, G.Nodes) {
	rng := rand.New(rand.NewPCG(2, 2))
	g := G.NewGraph()
	mk := func(name string, shape ...int) *G.Node {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.1)
		}
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
	}
	w1, w2 := mk("w1", 32, 1, 4, 4), mk("w2", 64, 32, 4, 4)
	var out *G.Node
	if ours {
		x := mk("x", B, 784)
		zero := func(n int) *G.Node {
			return G.NewVector(g, tensor.Float32, G.WithShape(n), G.WithName("b"+string(rune('0'+n%10))), G.WithValue(tensor.New(tensor.WithShape(n), tensor.WithBacking(make([]float32, n)))))
		}
		h := G.Must(Conv2D(x, w1, zero(32), Conv2DGeom{InC: 1, InH: 28, InW: 28, OutC: 32, KH: 4, KW: 4, Stride: 2, Pad: 1}, ReLU, true))
		out = G.Must(Conv2D(h, w2, zero(64), Conv2DGeom{InC: 32, InH: 14, InW: 14, OutC: 64, KH: 4, KW: 4, Stride: 2, Pad: 1}, ReLU, false))
	} else {
		x := mk("x", B, 1, 28, 28)
		conv := func(x, w *G.Node) *G.Node {
			return G.Must(G.Rectify(G.Must(G.Conv2d(x, w, tensor.Shape{4, 4}, []int{1, 1}, []int{2, 2}, []int{1, 1}))))
		}
		out = conv(conv(x, w1), w2)
	}
	if _, err := G.Grad(G.Must(G.Sum(out)), w1, w2); err != nil {
		b.Fatal(err)
	}
	return g, G.Nodes{w1, w2}
}

func benchConvLayers(b *testing.B, ours bool) {
	const B = 128
	g, ws := convLayersGraph(b, B, ours)
	vm := G.NewTapeMachine(g, G.BindDualValues(ws...))
	defer vm.Close()
	for i := range b.N + 1 {
		if i == 1 {
			b.ResetTimer()
		}
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
	b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkConvLayers compares the peer encoder's two convolutions
// (forward + backward, batch 128) with Conv2D and with gorgonia's Conv2d.
func BenchmarkConvLayers(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchConvLayers(b, true) })
	b.Run("gorgonia", func(b *testing.B) { benchConvLayers(b, false) })
}

// BenchmarkIm2col times the lowering of the peer's second convolution
// (32x14x14 -> 512 x 128·49) and its adjoint.
func BenchmarkIm2col(b *testing.B) {
	g := Conv2DGeom{InC: 32, InH: 14, InW: 14, OutC: 64, KH: 4, KW: 4, Stride: 2, Pad: 1}
	s, B := g.sides(), 128
	img := make([]float32, B*g.InSize())
	cols := make([]float32, s.colRows()*B*s.hws())
	b.Run("im2col", func(b *testing.B) {
		for range b.N {
			im2col(s, B, img, cols)
		}
	})
	b.Run("col2im", func(b *testing.B) {
		for range b.N {
			col2im(s, B, cols, img)
		}
	})
}

// BenchmarkPixelLogLik is log p(x|params) and its gradient for a batch of
// 128 MNIST-sized images (forward with the cached derivatives, then the
// gradient op).
func BenchmarkPixelLogLik(b *testing.B) {
	const B, D = 128, 784
	for _, c := range []pixelCase{{"logistic", PixelLogistic, 0}, {"mix5", PixelLogisticMix, 5}, {"categorical", PixelCategorical, 0}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 3))
			x, par := pixelInputs(rng, c, B, D)
			g := G.NewGraph()
			xn := G.NewMatrix(g, tensor.Float32, G.WithShape(B, D), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(B, D), tensor.WithBacking(toDtype(x, tensor.Float32)))))
			W := PixelParamWidth(c.kind, c.k, D)
			pn := G.NewMatrix(g, tensor.Float32, G.WithShape(B, W), G.WithName("p"), G.WithValue(tensor.New(tensor.WithShape(B, W), tensor.WithBacking(toDtype(par, tensor.Float32)))))
			l := G.Must(PixelLogLik(c.kind, c.k, xn, pn))
			if _, err := G.Grad(G.Must(G.Sum(l)), pn); err != nil {
				b.Fatal(err)
			}
			vm := G.NewTapeMachine(g, G.BindDualValues(pn))
			defer vm.Close()
			for i := range b.N + 1 {
				if i == 1 {
					b.ResetTimer()
				}
				if err := vm.RunAll(); err != nil {
					b.Fatal(err)
				}
				vm.Reset()
			}
		})
	}
}
