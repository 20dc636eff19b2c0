package amortized

import (
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// MLPTrunk is "mlp" (the default): the encoder is a stack of dense layers of
// widths Config.Hidden, the decoder of Config.DecoderHidden, each followed by
// Config.Activation, and every head is a linear map of the last layer.
const MLPTrunk = "mlp"

func init() {
	RegisterTrunk(MLPTrunk, MLPTrunk, func(args []string, c Config) (Trunk, error) {
		return mlpTrunk{}, noArgs(MLPTrunk, args)
	})
}

type mlpTrunk struct{}

func (mlpTrunk) String() string { return MLPTrunk }

func (mlpTrunk) Encoder(ps *nets.Params, c Config, heads []Head) (Net, error) {
	return newMLPNet(ps, "encoder", c.DataDim, c.Hidden, nets.Activation(c.Activation), heads)
}

func (mlpTrunk) Decoder(ps *nets.Params, c Config, in int, heads []Head) (Net, error) {
	return newMLPNet(ps, "decoder", in, c.DecoderHidden, nets.Activation(c.Activation), heads)
}

// mlpNet is an MLP body with linear heads <side>.<head>.
type mlpNet struct {
	body  nets.MLP
	heads []nets.Linear
	names []string
}

func newMLPNet(ps *nets.Params, side string, in int, widths []int, act nets.Activation, heads []Head) (*mlpNet, error) {
	body, err := nets.NewMLP(ps, side, in, widths, act)
	if err != nil {
		return nil, err
	}
	n := &mlpNet{body: body}
	h := body.Out(in)
	for _, hd := range heads {
		l, err := nets.NewLinear(ps, side+"."+hd.Name, h, hd.Width)
		if err != nil {
			return nil, err
		}
		n.heads, n.names = append(n.heads, l), append(n.names, hd.Name)
	}
	return n, nil
}

func (n *mlpNet) Forward(b *Builder, in *G.Node, data bool) HeadValues {
	var h *G.Node
	if data {
		h = must(n.body.ForwardData(b.Binding(), in))
	} else {
		h = must(n.body.Forward(b.Binding(), in))
	}
	out := make(HeadValues, len(n.heads))
	for i, l := range n.heads {
		out[n.names[i]] = must(l.Forward(b.Binding(), h))
	}
	return out
}
