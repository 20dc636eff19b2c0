package nets

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// HeadSpec is one named output of a network: Width values per row, with
// parameters <prefix>.<Name>.weight and .bias.
type HeadSpec struct {
	Name  string
	Width int
}

// ConvEncoderNet is a ConvEncoder with dense heads on its features: the
// whole encoder of a model, x -> one node per head.
type ConvEncoderNet struct {
	Trunk *ConvEncoder
	Heads []Linear
	names []string
}

// NewConvEncoderNet registers the trunk under name and each head as
// name.<head>.
func NewConvEncoderNet(ps *Params, name string, spec ConvSpec, in ImageShape, heads []HeadSpec) (*ConvEncoderNet, error) {
	t, err := NewConvEncoder(ps, name, spec, in)
	if err != nil {
		return nil, err
	}
	n := &ConvEncoderNet{Trunk: t}
	for _, h := range heads {
		l, err := NewLinear(ps, name+"."+h.Name, t.Out(in.Size()), h.Width)
		if err != nil {
			return nil, err
		}
		n.Heads = append(n.Heads, l)
		n.names = append(n.names, h.Name)
	}
	return n, nil
}

// Forward maps x (B, C·H·W) to every head; data means x gets no gradient.
func (n *ConvEncoderNet) Forward(b *Binding, x *G.Node, data bool) (map[string]*G.Node, error) {
	h, err := n.Trunk.forward(b, x, data)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*G.Node, len(n.Heads))
	for i, l := range n.Heads {
		if out[n.names[i]], err = l.Forward(b, h); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ConvDecoderNet is a ConvDecoder with transposed-convolution heads: a
// head of Width = P·C·H·W values gets P·C output channels, so its row is
// laid out [P][C][H][W] ([P][D]), the layout PixelLogLik reads (the RGB
// mixture's 10K·H·W-wide head is [10K][H·W]).
type ConvDecoderNet struct {
	Trunk *ConvDecoder
	Heads []ConvHead
	names []string
}

// NewConvDecoderNet registers the trunk under name and each head as
// name.<head>; every head's width must be a multiple of out.H·out.W.
func NewConvDecoderNet(ps *Params, name string, spec ConvSpec, latent int, out ImageShape, heads []HeadSpec) (*ConvDecoderNet, error) {
	t, err := NewConvDecoder(ps, name, spec, latent, out)
	if err != nil {
		return nil, err
	}
	n := &ConvDecoderNet{Trunk: t}
	hw := out.H * out.W
	for _, h := range heads {
		if h.Width <= 0 || h.Width%hw != 0 {
			return nil, fmt.Errorf("nets: %s: head %q has %d values, want a multiple of %dx%d (channels at the image size)", name, h.Name, h.Width, out.H, out.W)
		}
		hd, err := t.NewHead(ps, name+"."+h.Name, h.Width/hw)
		if err != nil {
			return nil, err
		}
		n.Heads = append(n.Heads, hd)
		n.names = append(n.names, h.Name)
	}
	return n, nil
}

// Forward maps z (B, latent) to every head.
func (n *ConvDecoderNet) Forward(b *Binding, z *G.Node) (map[string]*G.Node, error) {
	f, err := n.Trunk.Forward(b, z)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*G.Node, len(n.Heads))
	for i, h := range n.Heads {
		if out[n.names[i]], err = h.Forward(b, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}
