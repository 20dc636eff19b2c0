package amortized

import (
	"math"
	"strings"
	"testing"
)

// spareFamily is diag with an encoder head that q never reads: the head's
// weights get no gradient, which gorgonia refuses; the group of heads
// (nets.HeadGroup) is then incomplete.
type spareFamily struct{ diagFamily }

func (spareFamily) String() string { return "test-spare-head" }
func (spareFamily) Heads(c Config) []Head {
	return append(gaussHeads(c.Latent), Head{Name: "spare", Width: 3})
}

func init() {
	RegisterFamily("test-spare-head", "test-spare-head", func(args []string, c Config) (Family, error) {
		return spareFamily{}, noArgs("test-spare-head", args)
	})
}

// trainOps lists the op names of a trainer's shard-0 graph.
func trainOps(tr *Trainer) string {
	var b strings.Builder
	for _, n := range tr.g.g.AllNodes() {
		if n.Op() != nil {
			b.WriteString(n.Op().String() + ";")
		}
	}
	return b.String()
}

// Training graphs group the encoder's heads (one product forward, one node
// for their input gradient). A head outside the gradient's path leaves its group
// incomplete; the graph is then built again without groups, so the error
// is gorgonia's, as before groups.
func TestHeadGroupFallback(t *testing.T) {
	groups := map[string]int{"diag": 1, "aux:4": 3} // aux: the encoder's heads and its two output pairs
	for _, post := range []string{"diag", "aux:4", "test-spare-head"} {
		cfg := smallConfig("float32", "bernoulli")
		cfg.Posterior = post
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, 16, TrainOptions{Epochs: 1}, nil)
		if post == "test-spare-head" {
			if err == nil || !strings.Contains(err.Error(), "Non Differentiable WRTs") {
				t.Errorf("%s: error %v, want gorgonia's non-differentiable parameters", post, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", post, err)
		}
		ops := trainOps(tr)
		if got := strings.Count(ops, "headsGrad"); got != groups[post] {
			t.Errorf("%s: %d groups of heads, want %d", post, got, groups[post])
		}
		if got := strings.Count(ops, "headsFwd"); got != 1 {
			t.Errorf("%s: %d products for all the encoder's heads, want 1", post, got)
		}
		st, err := tr.Step(synthetic(16, cfg.DataDim, 1), 16, 1)
		if err != nil || math.IsNaN(st.Loss) {
			t.Fatalf("%s: step: %v, loss %v", post, err, st.Loss)
		}
		tr.Close()
	}
}
