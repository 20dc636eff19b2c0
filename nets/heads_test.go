package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// headsMode is how headsValues makes its heads: Dense, DenseHead or
// GroupHeads.
type headsMode int

const (
	plainHeads headsMode = iota
	groupedHeads
	sharedHeads
)

// headsValues builds n linear heads y_i = x W_i + b_i on x, grouped
// (HeadGroup) or not, and the loss Σ_i Σ c_i ⊙ f_i(y_i) with f_i = y² for
// even i and tanh(y) for odd i (so the heads' pullbacks run in an order
// of gorgonia's choosing); it returns the heads, then the gradients with
// respect to x, every W_i and every b_i, and whether the group was
// complete. With skip >= 0, head skip is left out of the loss.
func headsValues(t *testing.T, dt tensor.Dtype, mode headsMode, skip, B, K int, widths []int, x []float64, ws, bs, cs [][]float64) ([][]float64, bool) {
	g := G.NewGraph()
	xn := dtNode(g, dt, "x", B, K, x)
	hg := NewHeadGroup(len(widths))
	var loss *G.Node
	var ys, allW, allB, wns, bns G.Nodes
	for i, w := range widths {
		// distinct names: gorgonia merges equal inputs of one name and shape
		wn, bn := dtNode(g, dt, fmt.Sprint("w", i), K, w, ws[i]), dtNode(g, dt, fmt.Sprint("b", i), w, 0, bs[i])
		allW, allB = append(allW, wn), append(allB, bn)
		if i != skip { // a head outside the loss has no gradient
			wns, bns = append(wns, wn), append(bns, bn)
		}
	}
	if mode == sharedHeads {
		var err error
		if ys, err = GroupHeads(xn, allW, allB, hg); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range widths {
		switch mode {
		case groupedHeads:
			ys = append(ys, G.Must(DenseHead(xn, allW[i], allB[i], hg)))
		case plainHeads:
			ys = append(ys, G.Must(Dense(xn, allW[i], allB[i], "", false)))
		}
		y := ys[i]
		if i == skip {
			continue
		}
		f := G.Must(G.Square(y))
		if i%2 == 1 {
			f = G.Must(G.Tanh(y))
		}
		term := G.Must(G.Sum(G.Must(G.HadamardProd(f, dtNode(g, dt, fmt.Sprint("c", i), B, w, cs[i])))))
		if loss == nil {
			loss = term
		} else {
			loss = G.Must(G.Add(loss, term))
		}
	}
	grads, err := G.Grad(loss, append(append(G.Nodes{xn}, wns...), bns...)...)
	if err != nil && skip >= 0 {
		return nil, hg.Complete() // x has no gradient at all
	}
	if err != nil {
		t.Fatal(err)
	}
	return runValues(t, g, append(ys, grads...)...), hg.Complete()
}

// A HeadGroup's heads, made one by one (DenseHead) or with one product
// (GroupHeads), give the values and every gradient of ungrouped heads bit
// for bit (x's gradient: one node instead of a product per head and n-1
// adds), in float32 and float64, on small shapes and on aux:20's (the
// matrix kernels' full, half and edge tiles); x's gradient is the finite
// differences'.
func TestHeadGroupMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	draw := func(n int) []float64 {
		v := randSlice(rng, n, 0.5)
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
		return v
	}
	for _, c := range []struct {
		B, K   int
		widths []int
	}{{9, 13, []int{3, 5, 1, 8, 2, 4}}, {64, 40, []int{20, 20, 20, 20, 80, 80}}} {
		B, K, widths := c.B, c.K, c.widths
		x := draw(B * K)
		ws, bs, cs := make([][]float64, len(widths)), make([][]float64, len(widths)), make([][]float64, len(widths))
		for i, w := range widths {
			ws[i], bs[i], cs[i] = draw(K*w), draw(w), draw(B*w)
		}
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			plain, _ := headsValues(t, dt, plainHeads, -1, B, K, widths, x, ws, bs, cs)
			for _, mode := range []headsMode{groupedHeads, sharedHeads} {
				grouped, complete := headsValues(t, dt, mode, -1, B, K, widths, x, ws, bs, cs)
				if !complete {
					t.Fatalf("%v mode %d: group incomplete with every head in the loss", dt, mode)
				}
				for i := range plain {
					sameBits(t, fmt.Sprintf("B %d %v mode %d output %d", B, dt, mode, i), grouped[i], plain[i])
				}
			}
		}
		if B > 10 {
			continue // finite differences on the small case only
		}
		n := len(widths)
		loss := func() float64 {
			s := 0.0
			for i, w := range widths {
				for r := range B {
					for j := range w {
						y := bs[i][j]
						for k := range K {
							y += x[r*K+k] * ws[i][k*w+j]
						}
						f := y * y
						if i%2 == 1 {
							f = math.Tanh(y)
						}
						s += cs[i][r*w+j] * f
					}
				}
			}
			return s
		}
		got, _ := headsValues(t, tensor.Float64, sharedHeads, -1, B, K, widths, x, ws, bs, cs)
		for j, fd := range fdGradient(x, loss) {
			if g := got[n][j]; math.Abs(fd-g) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("d/dx[%d] = %v, finite difference %v", j, g, fd)
			}
		}
	}
}

// A head left out of the loss leaves its group incomplete, which the
// caller must check, whether or not G.Grad failed (here it does: x got no
// gradient from the heads that left it to the group); amortized builds the
// graph again without groups.
func TestHeadGroupIncomplete(t *testing.T) {
	const B, K = 3, 4
	widths := []int{2, 3, 2}
	rng := rand.New(rand.NewPCG(23, 24))
	ws, bs, cs := make([][]float64, 3), make([][]float64, 3), make([][]float64, 3)
	for i, w := range widths {
		ws[i], bs[i], cs[i] = randSlice(rng, K*w, 1), randSlice(rng, w, 1), randSlice(rng, B*w, 1)
	}
	if _, complete := headsValues(t, tensor.Float64, groupedHeads, 1, B, K, widths, randSlice(rng, B*K, 1), ws, bs, cs); complete {
		t.Error("a head outside the loss: group complete")
	}
}
