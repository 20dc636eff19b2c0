package nets

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
)

// ImageShape is the shape of one image: channels, height, width. A batch
// of images is a (B, C·H·W) matrix, NCHW per row.
type ImageShape struct{ C, H, W int }

// Size is C·H·W.
func (s ImageShape) Size() int { return s.C * s.H * s.W }

func (s ImageShape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// ConvSpec describes a convolutional trunk: an encoder of strided
// convolutions followed by dense layers ("conv:..."), or a decoder of
// dense layers followed by transposed convolutions ("deconv:...").
type ConvSpec struct {
	Transposed bool  // a decoder ("deconv")
	Channels   []int // encoder: the output channels of each convolution; decoder: the channels of the first feature map, then of each transposed convolution's output
	Kernel     int
	Stride     int
	Pad        int
	Act        Activation // ReLU or ELU (and Tanh, Softplus)
	// Gated replaces act(conv(x)) by conv_a(x) ⊙ σ(conv_g(x)) (van den Berg
	// et al. 2018): one layer with twice the channels, then [Gate].
	Gated bool
	// Res is the number of residual blocks h + conv(act(conv(h))) (3x3,
	// stride 1, padding 1, same channels) after each (transposed) convolution.
	Res int
	// Dense are the widths of the dense layers after the convolutions
	// (encoder) or before them (decoder).
	Dense []int
}

// The convolution defaults are the peer's and DCGAN's: 4x4 kernels,
// stride 2, padding 1, which halve (or double) the image size exactly.
const (
	DefaultKernel = 4
	DefaultStride = 2
	DefaultPad    = 1
)

// ConvPeerEncoder and ConvPeerDecoder are the trunks of the PyTorch peer
// (../shared/bench/peer_convvae_torch.py): two 4x4 stride-2 convolutions
// with 32 and 64 channels (28 -> 14 -> 7) and a 256-unit dense layer; a
// 256-unit dense layer, a dense layer to 64x7x7, a transposed convolution
// to 32 channels (7 -> 14) and, as the head, one to the image (14 -> 28).
const (
	ConvPeerEncoder = "conv:32,64/k4/s2/p1/relu/dense:256"
	ConvPeerDecoder = "deconv:64,32/k4/s2/p1/relu/dense:256"
)

// ParseConvSpec reads "conv:C1,C2,..." or "deconv:C1,C2,..." followed by
// options separated by "/": kN (kernel), sN (stride), pN (padding), relu
// or elu (or tanh, softplus), gated, resN (residual blocks per stage),
// dense:N1,N2,... Defaults: k4, s2, p1, relu, no gating, no residual
// blocks, no dense layers. Example: "conv:32,64/elu/gated/dense:256".
func ParseConvSpec(s string) (ConvSpec, error) {
	bad := func(format string, a ...any) (ConvSpec, error) {
		return ConvSpec{}, fmt.Errorf("nets: convolutional trunk %q: %s (want e.g. conv:32,64/k4/s2/p1/relu/dense:256 or deconv:64,32/dense:256)", s, fmt.Sprintf(format, a...))
	}
	parts := strings.Split(s, "/")
	c := ConvSpec{Kernel: DefaultKernel, Stride: DefaultStride, Pad: DefaultPad, Act: ReLU}
	kind, list, ok := strings.Cut(parts[0], ":")
	switch {
	case !ok:
		return bad("no channel list")
	case kind == "deconv":
		c.Transposed = true
	case kind != "conv":
		return bad("kind %q, want conv or deconv", kind)
	}
	var err error
	if c.Channels, err = parseSizes(list); err != nil {
		return bad("channels: %v", err)
	}
	if c.Transposed && len(c.Channels) < 1 {
		return bad("a decoder needs the channels of its first feature map")
	}
	seen := map[byte]bool{}
	for _, o := range parts[1:] {
		num := func(prefix string) (int, error) {
			if seen[prefix[0]] {
				return 0, fmt.Errorf("option %q given twice", prefix)
			}
			seen[prefix[0]] = true
			n, err := strconv.Atoi(o[len(prefix):])
			if err != nil || n < 0 || n > 64 {
				return 0, fmt.Errorf("option %q: want %s followed by a number in 0..64", o, prefix)
			}
			return n, nil
		}
		switch {
		case o == "relu" || o == "elu" || o == "tanh" || o == "softplus":
			c.Act = Activation(o)
		case o == "gated":
			c.Gated = true
		case strings.HasPrefix(o, "dense:"):
			if o == "dense:" {
				return bad("dense: no sizes")
			}
			if c.Dense, err = parseSizes(o[len("dense:"):]); err != nil {
				return bad("dense: %v", err)
			}
		case strings.HasPrefix(o, "res"):
			if c.Res, err = num("res"); err != nil {
				return bad("%v", err)
			}
		case strings.HasPrefix(o, "k"):
			if c.Kernel, err = num("k"); err != nil {
				return bad("%v", err)
			}
		case strings.HasPrefix(o, "s"):
			if c.Stride, err = num("s"); err != nil {
				return bad("%v", err)
			}
		case strings.HasPrefix(o, "p"):
			if c.Pad, err = num("p"); err != nil {
				return bad("%v", err)
			}
		default:
			return bad("unknown option %q", o)
		}
	}
	if c.Kernel < 1 || c.Stride < 1 || c.Pad >= c.Kernel {
		return bad("kernel %d, stride %d, padding %d: want kernel and stride >= 1 and padding below the kernel", c.Kernel, c.Stride, c.Pad)
	}
	return c, nil
}

func parseSizes(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<16 {
			return nil, fmt.Errorf("size %q, want an integer in 1..65536", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// String is the canonical form, which ParseConvSpec reads back.
func (c ConvSpec) String() string {
	var b strings.Builder
	if c.Transposed {
		b.WriteString("de")
	}
	b.WriteString("conv:" + joinInts(c.Channels))
	fmt.Fprintf(&b, "/k%d/s%d/p%d/%s", c.Kernel, c.Stride, c.Pad, c.Act)
	if c.Gated {
		b.WriteString("/gated")
	}
	if c.Res > 0 {
		fmt.Fprintf(&b, "/res%d", c.Res)
	}
	if len(c.Dense) > 0 {
		b.WriteString("/dense:" + joinInts(c.Dense))
	}
	return b.String()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// convLayer is one (transposed) convolution with its activation or gate
// and the residual blocks after it; parameters Name.weight, Name.bias,
// and Name.res<j>.a/.b.weight/.bias for the blocks.
type convLayer struct {
	Name  string
	Geom  Conv2DGeom // with OutC the layer's channels (doubled inside when gated)
	Act   Activation
	Gated bool
	Res   [][2]convLayer
}

func newConvLayer(ps *Params, name string, g Conv2DGeom, act Activation, gated bool, res int) (convLayer, error) {
	l := convLayer{Name: name, Geom: g, Act: act, Gated: gated}
	pg := l.paramGeom()
	if err := pg.Validate(); err != nil {
		return convLayer{}, fmt.Errorf("nets: %s: %w", name, err)
	}
	if _, err := ps.New(name+".weight", pg.FanIn(), pg.WeightShape()...); err != nil {
		return convLayer{}, err
	}
	if _, err := ps.New(name+".bias", pg.FanIn(), pg.OutC); err != nil {
		return convLayer{}, err
	}
	sq := Conv2DGeom{InC: g.OutC, InH: g.OutH(), InW: g.OutW(), OutC: g.OutC, KH: 3, KW: 3, Stride: 1, Pad: 1}
	for j := range res {
		var blk [2]convLayer
		for i, ab := range []string{"a", "b"} {
			a := act
			if i == 1 {
				a = "" // the block is h + W_b act(W_a h)
			}
			var err error
			if blk[i], err = newConvLayer(ps, fmt.Sprintf("%s.res%d.%s", name, j, ab), sq, a, false, 0); err != nil {
				return convLayer{}, err
			}
		}
		l.Res = append(l.Res, blk)
	}
	return l, nil
}

// paramGeom is the geometry of the weight: twice the channels when gated.
func (l convLayer) paramGeom() Conv2DGeom {
	g := l.Geom
	if l.Gated {
		g.OutC *= 2
	}
	return g
}

func (l convLayer) forward(b *Binding, x *G.Node, data bool) (*G.Node, error) {
	w, bias := b.Node(l.Name+".weight"), b.Node(l.Name+".bias")
	var h *G.Node
	var err error
	if l.Gated {
		if h, err = Conv2D(x, w, bias, l.paramGeom(), "", data); err == nil {
			h, err = Gate(h, l.Geom.OutC, l.Geom.OutH()*l.Geom.OutW())
		}
	} else {
		h, err = Conv2D(x, w, bias, l.Geom, l.Act, data)
	}
	if err != nil {
		return nil, fmt.Errorf("nets: %s: %w", l.Name, err)
	}
	for _, blk := range l.Res {
		r, err := blk[0].forward(b, h, false)
		if err != nil {
			return nil, err
		}
		if r, err = blk[1].forward(b, r, false); err != nil {
			return nil, err
		}
		if h, err = AddSame(h, r); err != nil {
			return nil, fmt.Errorf("nets: %s: %w", blk[1].Name, err)
		}
	}
	return h, nil
}

func (l convLayer) OutShape() ImageShape {
	return ImageShape{l.Geom.OutC, l.Geom.OutH(), l.Geom.OutW()}
}

// ConvEncoder is a convolutional encoder trunk: x (B, C·H·W) ->
// strided convolutions -> flatten -> dense layers.
// Parameters: Name.conv<i>.weight (OutC, InC, k, k) and .bias, the blocks'
// Name.conv<i>.res<j>.a/.b, and Name.dense.<i>.weight/.bias as an MLP's.
type ConvEncoder struct {
	Name  string
	Spec  ConvSpec
	In    ImageShape
	Convs []convLayer
	Dense MLP
}

// NewConvEncoder registers an encoder for images of shape in.
func NewConvEncoder(ps *Params, name string, spec ConvSpec, in ImageShape) (*ConvEncoder, error) {
	if spec.Transposed {
		return nil, fmt.Errorf("nets: %s: %q is a decoder spec, want conv:...", name, spec)
	}
	if err := checkAct(spec.Act); err != nil || spec.Act == "" {
		return nil, fmt.Errorf("nets: %s: activation %q", name, spec.Act)
	}
	e := &ConvEncoder{Name: name, Spec: spec, In: in}
	cur := in
	for i, ch := range spec.Channels {
		g := Conv2DGeom{InC: cur.C, InH: cur.H, InW: cur.W, OutC: ch, KH: spec.Kernel, KW: spec.Kernel, Stride: spec.Stride, Pad: spec.Pad}
		l, err := newConvLayer(ps, fmt.Sprintf("%s.conv%d", name, i), g, spec.Act, spec.Gated, spec.Res)
		if err != nil {
			return nil, fmt.Errorf("nets: %s on %v images: %w", name, in, err)
		}
		e.Convs = append(e.Convs, l)
		cur = l.OutShape()
	}
	var err error
	if e.Dense, err = NewMLP(ps, name+".dense", cur.Size(), spec.Dense, spec.Act); err != nil {
		return nil, err
	}
	return e, nil
}

// Out is the width of the features, given the input width in (which must
// be the image size; it is there to match MLP.Out).
func (e *ConvEncoder) Out(in int) int { return e.Dense.Out(e.flat()) }

func (e *ConvEncoder) flat() int {
	if len(e.Convs) == 0 {
		return e.In.Size()
	}
	return e.Convs[len(e.Convs)-1].OutShape().Size()
}

// Forward maps x (B, C·H·W) to features (B, Out).
func (e *ConvEncoder) Forward(b *Binding, x *G.Node) (*G.Node, error) { return e.forward(b, x, false) }

// ForwardData is Forward for x that is data (no gradient to x).
func (e *ConvEncoder) ForwardData(b *Binding, x *G.Node) (*G.Node, error) {
	return e.forward(b, x, true)
}

func (e *ConvEncoder) forward(b *Binding, x *G.Node, data bool) (*G.Node, error) {
	if x.Shape().Dims() != 2 || x.Shape()[1] != e.In.Size() {
		return nil, fmt.Errorf("nets: %s: input %v, want (B, %d) for %v images", e.Name, x.Shape(), e.In.Size(), e.In)
	}
	h := x
	for i, l := range e.Convs {
		var err error
		if h, err = l.forward(b, h, data && i == 0); err != nil {
			return nil, err
		}
	}
	return e.Dense.forward(b, h, data && len(e.Convs) == 0)
}

// ConvDecoder is a convolutional decoder trunk: z (B, L) -> dense layers
// -> a dense layer to the first feature map (Channels[0] x h0 x w0) ->
// transposed convolutions to Channels[1:]; a head (NewHead) then maps the
// last feature map to the image size. h0 and w0 are chosen so that the
// len(Channels) transposed convolutions (the head included) end exactly
// at the image size, with output padding where the stride requires it.
// Parameters: Name.dense.<i> (the last is the map), Name.deconv<i>
// (weights (InC, OutC, k, k) as PyTorch's ConvTranspose2d) and blocks.
type ConvDecoder struct {
	Name    string
	Spec    ConvSpec
	Latent  int
	Out     ImageShape // the image the head produces
	Map     ImageShape // the first feature map
	Dense   MLP
	Deconvs []convLayer
	geoms   []Conv2DGeom // every transposed convolution, the head's last
}

// NewConvDecoder registers a decoder from latent to images of shape out.
func NewConvDecoder(ps *Params, name string, spec ConvSpec, latent int, out ImageShape) (*ConvDecoder, error) {
	if !spec.Transposed || len(spec.Channels) == 0 {
		return nil, fmt.Errorf("nets: %s: %q is not a decoder spec, want deconv:C0,...", name, spec)
	}
	if err := checkAct(spec.Act); err != nil || spec.Act == "" {
		return nil, fmt.Errorf("nets: %s: activation %q", name, spec.Act)
	}
	n := len(spec.Channels)
	// Walk back from the image: in = (out + 2p - k - op)/s + 1 with the
	// output padding op in [0, s) that makes the division exact.
	hs, ws, oph, opw := make([]int, n+1), make([]int, n+1), make([]int, n), make([]int, n)
	hs[n], ws[n] = out.H, out.W
	k, s, p := spec.Kernel, spec.Stride, spec.Pad
	for i := n - 1; i >= 0; i-- {
		nh, nw := hs[i+1]+2*p-k, ws[i+1]+2*p-k
		if nh < 0 || nw < 0 {
			return nil, fmt.Errorf("nets: %s: %v images are too small for %d transposed convolutions k%d s%d p%d", name, out, n, k, s, p)
		}
		oph[i], opw[i] = nh%s, nw%s
		hs[i], ws[i] = nh/s+1, nw/s+1
	}
	d := &ConvDecoder{Name: name, Spec: spec, Latent: latent, Out: out, Map: ImageShape{spec.Channels[0], hs[0], ws[0]}}
	var err error
	if d.Dense, err = NewMLP(ps, name+".dense", latent, append(slices.Clone(spec.Dense), d.Map.Size()), spec.Act); err != nil {
		return nil, err
	}
	for i := range n {
		outC := out.C // the head's channels are set by NewHead
		if i+1 < n {
			outC = spec.Channels[i+1]
		}
		g := Conv2DGeom{InC: spec.Channels[i], InH: hs[i], InW: ws[i], OutC: outC, KH: k, KW: k, Stride: s, Pad: p, OutPadH: oph[i], OutPadW: opw[i], Transposed: true}
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("nets: %s: %w", name, err)
		}
		d.geoms = append(d.geoms, g)
		if i+1 < n {
			l, err := newConvLayer(ps, fmt.Sprintf("%s.deconv%d", name, i), g, spec.Act, spec.Gated, spec.Res)
			if err != nil {
				return nil, err
			}
			d.Deconvs = append(d.Deconvs, l)
		}
	}
	return d, nil
}

// FeatureShape is the shape of the trunk's output, the head's input.
func (d *ConvDecoder) FeatureShape() ImageShape {
	if len(d.Deconvs) == 0 {
		return d.Map
	}
	return d.Deconvs[len(d.Deconvs)-1].OutShape()
}

// Forward maps z (B, Latent) to the last feature map (B, FeatureShape().Size()).
func (d *ConvDecoder) Forward(b *Binding, z *G.Node) (*G.Node, error) {
	h, err := d.Dense.Forward(b, z)
	if err != nil {
		return nil, err
	}
	for _, l := range d.Deconvs {
		if h, err = l.forward(b, h, false); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ConvHead is the decoder's last transposed convolution, without
// activation: Channels output maps at the image size (for a likelihood
// with P parameter blocks on C-channel images, Channels = P·C, which gives
// the block layout of PixelLogLik).
type ConvHead struct {
	layer convLayer
}

// NewHead registers a head called name (parameters name.weight, name.bias).
func (d *ConvDecoder) NewHead(ps *Params, name string, channels int) (ConvHead, error) {
	g := d.geoms[len(d.geoms)-1]
	g.OutC = channels
	l, err := newConvLayer(ps, name, g, "", false, 0)
	return ConvHead{l}, err
}

// Out is the head's output width, channels·H·W.
func (h ConvHead) Out() int { return h.layer.Geom.OutSize() }

// Forward maps the decoder's features to the head's output.
func (h ConvHead) Forward(b *Binding, x *G.Node) (*G.Node, error) {
	return h.layer.forward(b, x, false)
}
