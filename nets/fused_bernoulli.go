package nets

import (
	"fmt"
	"hash"
	"runtime"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/cores"
	"github.com/govae/govae/internal/kernels/gemm"
	"github.com/govae/govae/internal/kernels/simd"
	"gonum.org/v1/gonum/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// FuseBernoulliLogLik is BernoulliLogLik(x, logits) for logits made by
// Dense without an activation (a linear head, h W + b), computed in one
// pass: the per-row sums are taken from each block of the product h W as
// the GEMM finishes it, while it is in cache (gemm.SgemmEpilogue), instead
// of in a second pass that reads the whole (B, D) matrix back from memory.
// The numbers are BernoulliLogLik's, bit for bit, and logits' value holds
// the logits once the new node has run. The logits node itself is no
// longer computed when it runs (this op computes it): logits must not be
// read by any other node until Unfuse(logits) is called, and the result
// has no gradient (for evaluation graphs). ok is false, and nothing is
// changed, when logits is not such a node; use BernoulliLogLik then.
//
// fixedW says the weight W keeps its values for the life of the graph (a
// graph built for one evaluation and then dropped): the op then packs W
// for the GEMM on its first run only (gemm.PackB), not on every run.
func FuseBernoulliLogLik(x, logits *G.Node, fixedW bool) (ll *G.Node, ok bool, err error) {
	op, isDense := logits.Op().(denseOp)
	if !isDense || op.act != "" || op.cache == nil {
		return nil, false, nil
	}
	if x.Shape().Dims() != 2 || !x.Shape().Eq(logits.Shape()) {
		return nil, false, fmt.Errorf("nets: Bernoulli log-likelihood: x %v and logits %v must be equal (B, D) shapes", x.Shape(), logits.Shape())
	}
	in := graph.NodesOf(logits.Graph().From(logits.ID()))
	if len(in) != 3 {
		return nil, false, nil
	}
	h, w, b := in[0].(*G.Node), in[1].(*G.Node), in[2].(*G.Node)
	op2 := denseBernoulliOp{opBase: newBase(), acc: new([][8]float32)}
	if fixedW {
		op2.packed = new(packedW)
	}
	ll, err = G.ApplyOp(op2, x, h, w, b, logits)
	if err != nil {
		return nil, false, err
	}
	op.cache.deferred = true
	return ll, true, nil
}

// Repack makes a node FuseBernoulliLogLik made with fixedW pack W again on
// its next run, for a graph kept while the weights change (W's storage
// stays where it was, so the op cannot tell). Other nodes are left alone.
func Repack(ll *G.Node) {
	if op, ok := ll.Op().(denseBernoulliOp); ok && op.packed != nil {
		op.packed.at = nil
	}
}

// Unfuse makes a logits node that FuseBernoulliLogLik took over compute
// its value again when it runs, for a graph that also reads it elsewhere.
func Unfuse(logits *G.Node) {
	if op, ok := logits.Op().(denseOp); ok && op.cache != nil {
		op.cache.deferred = false
	}
}

// denseBernoulliOp is sum_j x_ij l_ij - softplus(l_ij) per row with
// l = h W + b, written into the dense node's tensor (its fifth input).
type denseBernoulliOp struct {
	opBase
	acc *[][8]float32 // per row, the lanes of the sum (see simd.BernoulliBiasAcc)
	// packed, if not nil, holds W packed on the first run (fixedW).
	packed *packedW
}

// packedW is a weight packed for the GEMM, and where its values were.
type packedW struct {
	pb *gemm.PackedB
	at *float32
}

func (op denseBernoulliOp) Arity() int { return 5 }
func (op denseBernoulliOp) Type() hm.Type {
	return hm.NewFnType(matT(), matT(), matT(), vecT(), matT(), vecT())
}
func (op denseBernoulliOp) String() string                    { return "denseBernoulliLogLik" }
func (op denseBernoulliOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op denseBernoulliOp) Hashcode() uint32                  { return hashOf(op) }
func (op denseBernoulliOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op denseBernoulliOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
}

func (op denseBernoulliOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, h, w, b, l := ds[0], ds[1], ds[2], ds[3], ds[4]
	B, K, N := h.Shape()[0], h.Shape()[1], w.Shape()[1]
	s := op.out(prealloc, x.Dtype(), B)
	if s.Dtype() != tensor.Float32 || !simd.VectorBernoulli() || !UsingFastBLAS() || gemm.EpilogueAlign()%8 != 0 {
		// The two passes of Dense and BernoulliLogLik, as they would run.
		matmul(false, false, B, N, K, h, w, l)
		if s.Dtype() == tensor.Float32 {
			ls, bs, xs, ss := l.Float32s(), b.Float32s(), x.Float32s(), s.Float32s()
			for i := range B {
				simd.Add(ls[i*N:(i+1)*N], bs)
				ss[i] = simd.BernoulliRow(xs[i*N:(i+1)*N], ls[i*N:(i+1)*N])
			}
		} else {
			biasAct(l.Float64s(), b.Float64s(), B, N, "", softplus64)
			bernoulliRows(s.Float64s(), x.Float64s(), l.Float64s(), B, N)
		}
		return s, nil
	}
	if cap(*op.acc) < B {
		*op.acc = make([][8]float32, B)
	}
	acc := (*op.acc)[:B]
	clear(acc)
	xs, hs, ws, bs, ls, ss := x.Float32s(), h.Float32s(), w.Float32s(), b.Float32s(), l.Float32s(), s.Float32s()
	nv := N &^ 7 // the rows' vector part
	product := func(m int, a, c []float32, epi func(i0, i1, j0, j1 int)) {
		gemm.SgemmEpilogue(m, N, K, a, ws, c, epi)
	}
	if p := op.packed; p != nil && len(ws) > 0 {
		if p.at != &ws[0] { // first run, or W's tensor was replaced
			p.pb, p.at = gemm.PackB(K, N, ws), &ws[0]
		}
		product = p.pb.SgemmEpilogue
	}
	rows := func(r0, r1 int) {
		product(r1-r0, hs[r0*K:r1*K], ls[r0*N:r1*N], func(i0, i1, j0, j1 int) {
			jv := min(j1, nv)
			for r := r0 + i0; r < r0+i1; r++ {
				o := r * N
				if j0 < jv {
					simd.BernoulliBiasAcc(&acc[r], xs[o+j0:o+jv], ls[o+j0:o+jv], bs[j0:jv])
				}
				if j1 == N {
					ss[r] = simd.BernoulliFinish(&acc[r], xs[o+nv:o+N], ls[o+nv:o+N], bs[nv:N])
				}
			}
		})
	}
	// Rows split over the cores at multiples of 12, as Sgemm's own split
	// (the values do not depend on it); each part packs W on its own.
	p := min(runtime.GOMAXPROCS(0), B/48)
	if p <= 1 || !cores.Spare() {
		rows(0, B)
		return s, nil
	}
	bound := func(i int) int {
		if i == p {
			return B
		}
		return B * i / p / 12 * 12
	}
	cores.Run(p, func(i int) { rows(bound(i), bound(i+1)) })
	return s, nil
}
