package amortized

import (
	"fmt"

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

// mlpNet is an MLP body with linear heads <side>.<head> (or, for a head
// with parts, <side>.<part> for each part, run as one product).
type mlpNet struct {
	body  nets.MLP
	heads [][]nets.Linear
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
		var ls []nets.Linear
		if w := partsWidth(hd); w != hd.Width {
			return nil, fmt.Errorf("%s head %q: its parts are %d wide, the head %d", side, hd.Name, w, hd.Width)
		}
		for _, p := range hd.params() {
			l, err := nets.NewLinear(ps, side+"."+p.Name, h, p.Width)
			if err != nil {
				return nil, err
			}
			ls = append(ls, l)
		}
		n.heads, n.names = append(n.heads, ls), append(n.names, hd.Name)
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
	if data && len(n.heads) > 1 && n.singleHeads() {
		if hg := b.headGroup(len(n.heads)); hg != nil {
			// one product for all heads and one node for x's gradient
			ws, bs := make([]*G.Node, len(n.heads)), make([]*G.Node, len(n.heads))
			for i, ls := range n.heads {
				ws[i], bs[i] = b.Binding().Node(ls[0].WeightName()), b.Binding().Node(ls[0].BiasName())
			}
			ys, err := nets.GroupHeads(h, ws, bs, *hg)
			if err != nil {
				b.Fail(err)
			}
			for i, y := range ys {
				out[n.names[i]] = y
			}
			return out
		}
	}
	for i, ls := range n.heads {
		if len(ls) == 1 {
			out[n.names[i]] = must(ls[0].Forward(b.Binding(), h))
			continue
		}
		ws, bs := make([]*G.Node, len(ls)), make([]*G.Node, len(ls))
		for j, l := range ls {
			ws[j], bs[j] = b.Binding().Node(l.WeightName()), b.Binding().Node(l.BiasName())
		}
		out[n.names[i]] = must(nets.DenseHeads(h, ws, bs))
	}
	return out
}

// singleHeads says every head is one linear map (none has parts).
func (n *mlpNet) singleHeads() bool {
	for _, ls := range n.heads {
		if len(ls) != 1 {
			return false
		}
	}
	return true
}

// partsWidth is the width of hd's parts together (hd.Width without parts).
func partsWidth(hd Head) int {
	w := 0
	for _, p := range hd.params() {
		w += p.Width
	}
	return w
}
