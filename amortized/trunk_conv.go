package amortized

import (
	"fmt"
	"strings"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// ConvTrunk is "conv": a convolutional encoder and decoder (nets.ConvSpec).
// Its configuration string is the two specs joined by ';':
//
//	conv:32,64/k4/s2/p1/relu/dense:256;deconv:64,32/k4/s2/p1/relu/dense:256
//
// (the name "conv" is the start of the encoder spec). Without ";deconv:..."
// the decoder mirrors the encoder: the channels and dense widths reversed,
// the same kernel, stride, padding, activation, gating and residual blocks.
// Config.Activation, Hidden and DecoderHidden do not apply (each spec
// carries its own). Family heads are dense layers on the encoder's
// features; likelihood heads are transposed convolutions with
// Width/(H·W) output channels, so a head of P·D values per row comes out
// laid out [P][C][H][W], the layout of the pixel likelihoods.
const ConvTrunk = "conv"

// ConvPeerTrunk is the architecture of the PyTorch peer
// (../shared/bench/peer_convvae_torch.py), the trunk of -arch convpeer.
const ConvPeerTrunk = nets.ConvPeerEncoder + ";" + nets.ConvPeerDecoder

func init() {
	RegisterTrunk(ConvTrunk, "conv:SPEC[;deconv:SPEC]", parseConvTrunk)
}

// ConvTrunkString is the canonical trunk string (Config.Trunk) for an
// encoder spec and a decoder spec ("" for the encoder's mirror image).
// The specs are checked here; their fit to the images, by Normalize.
func ConvTrunkString(encoder, decoder string) (string, error) {
	enc, err := nets.ParseConvSpec(encoder)
	if err != nil {
		return "", err
	}
	if enc.Transposed {
		return "", fmt.Errorf("encoder %q is a decoder spec (deconv:...), want conv:...", encoder)
	}
	dec := mirrorConv(enc)
	if decoder != "" {
		if dec, err = nets.ParseConvSpec(decoder); err != nil {
			return "", err
		}
		if !dec.Transposed {
			return "", fmt.Errorf("decoder %q is an encoder spec, want deconv:...", decoder)
		}
	}
	return convTrunk{enc: enc, dec: dec}.String(), nil
}

func parseConvTrunk(args []string, c Config) (Trunk, error) {
	full := ConvTrunk + ":" + strings.Join(args, ":")
	es, ds, hasDec := strings.Cut(full, ";")
	enc, err := nets.ParseConvSpec(es)
	if err != nil {
		return nil, err
	}
	if enc.Transposed {
		return nil, fmt.Errorf("encoder %q is a decoder spec (deconv:...), want conv:...", es)
	}
	var dec nets.ConvSpec
	if hasDec {
		if dec, err = nets.ParseConvSpec(ds); err != nil {
			return nil, err
		}
		if !dec.Transposed {
			return nil, fmt.Errorf("decoder %q is an encoder spec, want deconv:...", ds)
		}
	} else {
		dec = mirrorConv(enc)
	}
	if c.ImageRows == 0 || c.ImageCols == 0 {
		return nil, fmt.Errorf("a convolutional trunk needs images (image_rows and image_cols), got data_dim %d without a shape", c.DataDim)
	}
	if len(dec.Channels) == 0 {
		return nil, fmt.Errorf("decoder %q has no transposed convolution, want deconv:C0,...", dec)
	}
	t := convTrunk{enc: enc, dec: dec}
	// Build both networks in a counting store now, so that a spec that does
	// not fit the image (too many stride-2 layers for its size) is a
	// configuration error naming the spec, not a failure at New.
	ps, err := nets.NewCounter(c.tensorDtype(), 1<<62)
	if err != nil {
		return nil, err
	}
	if _, err := t.Encoder(ps, c, nil); err != nil {
		return nil, err
	}
	if _, err := t.Decoder(ps, c, c.Latent, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// mirrorConv is the decoder that mirrors encoder e.
func mirrorConv(e nets.ConvSpec) nets.ConvSpec {
	d := e
	d.Transposed = true
	d.Channels = reversed(e.Channels)
	d.Dense = reversed(e.Dense)
	return d
}

func reversed(v []int) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[len(v)-1-i] = x
	}
	return out
}

type convTrunk struct{ enc, dec nets.ConvSpec }

func (t convTrunk) String() string { return t.enc.String() + ";" + t.dec.String() }

func imageShape(c Config) nets.ImageShape {
	s := c.Shape()
	return nets.ImageShape{C: s.Channels, H: s.Rows, W: s.Cols}
}

func headSpecs(heads []Head) []nets.HeadSpec {
	out := make([]nets.HeadSpec, len(heads))
	for i, h := range heads {
		out[i] = nets.HeadSpec{Name: h.Name, Width: h.Width}
	}
	return out
}

func (t convTrunk) Encoder(ps *nets.Params, c Config, heads []Head) (Net, error) {
	n, err := nets.NewConvEncoderNet(ps, "encoder", t.enc, imageShape(c), headSpecs(heads))
	if err != nil {
		return nil, err
	}
	return convEncoderNet{n}, nil
}

func (t convTrunk) Decoder(ps *nets.Params, c Config, in int, heads []Head) (Net, error) {
	n, err := nets.NewConvDecoderNet(ps, "decoder", t.dec, in, imageShape(c), headSpecs(heads))
	if err != nil {
		return nil, err
	}
	return convDecoderNet{n}, nil
}

type convEncoderNet struct{ n *nets.ConvEncoderNet }

func (e convEncoderNet) Forward(b *Builder, in *G.Node, data bool) HeadValues {
	out, err := e.n.Forward(b.Binding(), in, data)
	if err != nil {
		b.Fail(err)
		return nil
	}
	return out
}

type convDecoderNet struct{ n *nets.ConvDecoderNet }

// Forward ignores data: the decoder's input z always needs its gradient
// in training, and in the other graphs an unused gradient is not computed.
func (d convDecoderNet) Forward(b *Builder, in *G.Node, data bool) HeadValues {
	out, err := d.n.Forward(b.Binding(), in)
	if err != nil {
		b.Fail(err)
		return nil
	}
	return out
}
