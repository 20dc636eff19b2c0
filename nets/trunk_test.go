package nets

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestParseConvSpec(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"conv:32,64", "conv:32,64/k4/s2/p1/relu"},
		{"deconv:64,32/dense:256", "deconv:64,32/k4/s2/p1/relu/dense:256"},
		{"conv:16,32,64/k3/s2/p1/elu/gated/res2/dense:512,256", "conv:16,32,64/k3/s2/p1/elu/gated/res2/dense:512,256"},
		{ConvPeerEncoder, ConvPeerEncoder},
		{ConvPeerDecoder, ConvPeerDecoder},
	} {
		s, err := ParseConvSpec(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if s.String() != c.want {
			t.Fatalf("%q: canonical %q, want %q", c.in, s, c.want)
		}
		back, err := ParseConvSpec(s.String())
		if err != nil || back.String() != s.String() {
			t.Fatalf("%q does not read back: %v %v", s, back, err)
		}
	}
	for _, bad := range []string{"", "conv", "mlp:32", "conv:32,x", "conv:0", "conv:32/k", "conv:32/k4/k5",
		"conv:32/p4", "conv:32/s0", "conv:32/bogus", "deconv:", "conv:32/dense:", "conv:32/res-1", "conv:32/k99"} {
		if _, err := ParseConvSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestConvPeerPreset checks the preset's shapes and parameter counts
// against the PyTorch peer's module (peer_convvae_torch.py, z = 32).
func TestConvPeerPreset(t *testing.T) {
	ps, _ := NewParams(tensor.Float32)
	es, _ := ParseConvSpec(ConvPeerEncoder)
	ds, _ := ParseConvSpec(ConvPeerDecoder)
	img := ImageShape{1, 28, 28}
	enc, err := NewConvEncoder(ps, "encoder", es, img)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewConvDecoder(ps, "decoder", ds, 32, img)
	if err != nil {
		t.Fatal(err)
	}
	head, err := dec.NewHead(ps, "decoder.logits", 1)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Out(784) != 256 || dec.Map != (ImageShape{64, 7, 7}) || dec.FeatureShape() != (ImageShape{32, 14, 14}) || head.Out() != 784 {
		t.Fatalf("encoder out %d, map %v, features %v, head %d", enc.Out(784), dec.Map, dec.FeatureShape(), head.Out())
	}
	want := map[string][]int{ // torch: c1, c2, f1, g1, g2, d1, d2 (Linear weights transposed)
		"encoder.conv0.weight": {32, 1, 4, 4}, "encoder.conv0.bias": {32},
		"encoder.conv1.weight": {64, 32, 4, 4}, "encoder.conv1.bias": {64},
		"encoder.dense.0.weight": {3136, 256}, "encoder.dense.0.bias": {256},
		"decoder.dense.0.weight": {32, 256}, "decoder.dense.0.bias": {256},
		"decoder.dense.1.weight": {256, 3136}, "decoder.dense.1.bias": {3136},
		"decoder.deconv0.weight": {64, 32, 4, 4}, "decoder.deconv0.bias": {32},
		"decoder.logits.weight": {32, 1, 4, 4}, "decoder.logits.bias": {1},
	}
	if len(ps.All()) != len(want) {
		t.Fatalf("%d parameters, want %d", len(ps.All()), len(want))
	}
	for _, p := range ps.All() {
		if !slices.Equal(p.Shape, want[p.Name]) {
			t.Fatalf("%s: shape %v, want %v", p.Name, p.Shape, want[p.Name])
		}
	}
	// The peer's total without its two 256->32 heads (16,448).
	if n := ps.Count(); n != 1700609-16448 {
		t.Fatalf("%d parameters, the peer has %d without the heads", n, 1700609-16448)
	}
	// PyTorch's fan-in: in·k² for Conv2d, out·k² for ConvTranspose2d (dim 1 of its weight).
	if f := ps.Get("decoder.deconv0.weight").FanIn; f != 32*16 {
		t.Fatalf("transposed convolution fan-in %d, want %d", f, 32*16)
	}
}

func TestConvDecoderSizes(t *testing.T) {
	ps, _ := NewParams(tensor.Float64)
	spec, _ := ParseConvSpec("deconv:8,4")
	for i, out := range []ImageShape{{3, 13, 13}, {1, 28, 20}, {2, 9, 5}, {1, 13, 14}} {
		d, err := NewConvDecoder(ps, "d"+string(rune('a'+i)), spec, 3, out)
		if err != nil {
			t.Fatalf("%v: %v", out, err)
		}
		h, err := d.NewHead(ps, d.Name+".head", 2*out.C)
		if err != nil {
			t.Fatal(err)
		}
		if h.Out() != 2*out.Size() {
			t.Fatalf("%v: head width %d, want %d", out, h.Out(), 2*out.Size())
		}
	}
	if _, err := NewConvDecoder(ps, "bad2", spec, 3, ImageShape{1, 1, 1}); err == nil {
		t.Fatal("1x1 images accepted")
	}
}

// trunkGradCheck builds out = build(binding, x), the loss sum(out ⊙ r), and
// compares the gradients of every parameter and of x with central finite
// differences of the same graph's forward pass.
func trunkGradCheck(t *testing.T, ps *Params, B, in int, build func(*Binding, *G.Node) (*G.Node, error)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	ps.InitUniform(rng)
	g := G.NewGraph()
	bd := ps.Bind(g)
	xv := randSlice(rng, B*in, 1)
	xt := tensor.New(tensor.WithShape(B, in), tensor.WithBacking(xv))
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(B, in), G.WithName("x"), G.WithValue(xt))
	out, err := build(bd, x)
	if err != nil {
		t.Fatal(err)
	}
	r := randSlice(rng, out.Shape().TotalSize(), 1)
	rn := G.NewMatrix(g, tensor.Float64, G.WithShape(out.Shape()...), G.WithName("r"), G.WithValue(tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(r))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, rn))))
	var lv G.Value
	G.Read(loss, &lv)
	wrt := append(G.Nodes{x}, bd.Nodes()...)
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	run := func() float64 {
		for _, n := range wrt {
			if gv, err := n.Grad(); err == nil && gv != nil {
				clear(gv.Data().([]float64))
			}
		}
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		return lv.Data().(float64)
	}
	run()
	grads := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, _ := n.Grad()
		grads[i] = slices.Clone(gv.Data().([]float64))
	}
	vals := append([][]float64{xv}, nil)
	vals = vals[:1]
	for _, p := range ps.All() {
		vals = append(vals, p.Float64s())
	}
	for i, v := range vals {
		f := func(u []float64) float64 {
			saved := slices.Clone(v)
			copy(v, u)
			l := run()
			copy(v, saved)
			return l
		}
		num := fd.Gradient(nil, f, slices.Clone(v), &fd.Settings{Formula: fd.Central, Step: 1e-6})
		if d := maxDiff(grads[i], num); d > 1e-6 {
			t.Fatalf("gradient of %s differs from finite differences by %g", wrt[i].Name(), d)
		}
	}
}

func TestConvTrunkGradients(t *testing.T) {
	img := ImageShape{2, 6, 5}
	for _, spec := range []string{"conv:3,4/k3/s2/p1/elu/gated/res1/dense:5", "conv:3/k2/s1/p0/relu/res1"} {
		t.Run(spec, func(t *testing.T) {
			ps, _ := NewParams(tensor.Float64)
			s, err := ParseConvSpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewConvEncoder(ps, "enc", s, img)
			if err != nil {
				t.Fatal(err)
			}
			trunkGradCheck(t, ps, 2, img.Size(), e.Forward)
		})
	}
	for _, c := range []struct {
		spec string
		img  ImageShape
	}{{"deconv:3,2/k3/s2/p1/elu/gated/res1/dense:4", ImageShape{2, 9, 5}}, {"deconv:2/k4/s2/p1/relu", ImageShape{2, 6, 4}}} {
		spec, img := c.spec, c.img
		t.Run(spec, func(t *testing.T) {
			ps, _ := NewParams(tensor.Float64)
			s, err := ParseConvSpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewConvDecoder(ps, "dec", s, 3, img)
			if err != nil {
				t.Fatal(err)
			}
			h, err := d.NewHead(ps, "dec.head", 2*img.C)
			if err != nil {
				t.Fatal(err)
			}
			trunkGradCheck(t, ps, 2, 3, func(b *Binding, z *G.Node) (*G.Node, error) {
				f, err := d.Forward(b, z)
				if err != nil {
					return nil, err
				}
				return h.Forward(b, f)
			})
		})
	}
}

// TestConvNets builds the peer's encoder and a decoder with two heads and
// runs them on a batch: widths, names and the head layout.
func TestConvNets(t *testing.T) {
	ps, _ := NewParams(tensor.Float32)
	es, _ := ParseConvSpec(ConvPeerEncoder)
	ds, _ := ParseConvSpec(ConvPeerDecoder)
	img := ImageShape{3, 28, 28}
	enc, err := NewConvEncoderNet(ps, "encoder", es, img, []HeadSpec{{"mean", 32}, {"logvar", 32}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewConvDecoderNet(ps, "decoder", ds, 32, img, []HeadSpec{{"params", 2 * img.Size()}, {"logits", img.Size()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewConvDecoderNet(ps, "bad", ds, 32, img, []HeadSpec{{"x", 100}}); err == nil {
		t.Fatal("a head width that is not whole channels accepted")
	}
	for _, name := range []string{"encoder.mean.weight", "encoder.logvar.bias", "decoder.params.weight", "decoder.logits.bias"} {
		if ps.Get(name) == nil {
			t.Fatalf("no parameter %s", name)
		}
	}
	if s := ps.Get("decoder.params.weight").Shape; !slices.Equal(s, []int{32, 6, 4, 4}) {
		t.Fatalf("params head weight %v", s)
	}
	ps.InitUniform(rand.New(rand.NewPCG(1, 2)))
	g := G.NewGraph()
	bd := ps.Bind(g)
	B := 3
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(B, img.Size()), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(B, img.Size()), tensor.WithBacking(make([]float32, B*img.Size())))))
	hs, err := enc.Forward(bd, x, true)
	if err != nil {
		t.Fatal(err)
	}
	os, err := dec.Forward(bd, hs["mean"])
	if err != nil {
		t.Fatal(err)
	}
	if !hs["logvar"].Shape().Eq(tensor.Shape{B, 32}) || !os["params"].Shape().Eq(tensor.Shape{B, 2 * img.Size()}) || !os["logits"].Shape().Eq(tensor.Shape{B, img.Size()}) {
		t.Fatalf("shapes %v %v %v", hs["logvar"].Shape(), os["params"].Shape(), os["logits"].Shape())
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if !AllFinite(os["params"].Value().(tensor.Tensor)) {
		t.Fatal("non-finite outputs")
	}
}
