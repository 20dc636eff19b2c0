package amortized

import (
	"fmt"
	"math"
	"runtime"

	"github.com/govae/govae/internal/kernels/simd"
	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// flushBelow is where Adam's float32 moments are flushed to zero. Left alone
// they decay into subnormal numbers, which the CPU handles in microcode and
// which slowed a whole training step several-fold in our measurements.
const flushBelow = 1e-30

// Adam is the optimizer of Kingma & Ba (2015), written over the raw slices of
// the parameters, with PyTorch's placement of epsilon:
//
//	m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//	w <- w - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//
// It is the project's one Adam: the trainer steps a parameter store with
// it (moments M and V, saved in checkpoints), and [Model.LocalELBO] and the
// flows2d experiment step plain float64 slices with [Adam.StepFloat64s].
// Both paths run the same element kernel (internal/kernels/simd's for float32).
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	// M and V are the first and second moments under the parameters' names
	// (the parameter-store path).
	M, V *nets.Params
	// per-goroutine sums of the shards' gradient chunks
	scratch32 [][]float32
	scratch64 [][]float64
	// the slice path's moments and step count
	m64, v64 [][]float64
	t        int64
}

// NewAdam returns Adam with step size lr, decay rates beta1 and beta2 and
// epsilon eps, for the slice path ([Adam.StepFloat64s]).
func NewAdam(lr, beta1, beta2, eps float64) *Adam {
	return &Adam{LR: lr, Beta1: beta1, Beta2: beta2, Eps: eps}
}

// newAdam returns Adam with zero moments shaped like ps.
func newAdam(ps *nets.Params, o TrainOptions) *Adam {
	return &Adam{LR: o.LR, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.AdamEps, M: ps.ZerosLike(), V: ps.ZerosLike()}
}

// StepFloat64s takes one step on the slices w[i] against their gradients
// g[i] (at least as long) with step size lr (a schedule's current rate,
// often a.LR). The moments are allocated at the first step; later steps
// must pass slices of the same lengths.
func (a *Adam) StepFloat64s(w, g [][]float64, lr float64) {
	if a.m64 == nil {
		for _, wi := range w {
			a.m64, a.v64 = append(a.m64, make([]float64, len(wi))), append(a.v64, make([]float64, len(wi)))
		}
	}
	a.t++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.t))
	invSqrtBC2 := 1 / math.Sqrt(1-math.Pow(a.Beta2, float64(a.t)))
	for i, wi := range w {
		adamKernel(wi, g[i][:len(wi)], a.m64[i], a.v64[i], a.Beta1, a.Beta2, lr/bc1, invSqrtBC2, a.Eps)
	}
}

// update applies step t (1-based) to params given their gradients, the sum
// over shards of grads[s][i], and copies the new weights into the replicas
// (stores with params' layout). The update is element-wise, so it is split
// into chunks run on all cores; every element's arithmetic is the same
// however it is split.
func (a *Adam) update(params []*nets.Param, grads [][]tensor.Tensor, replicas []*nets.Params, t int64) error {
	bc1 := 1 - math.Pow(a.Beta1, float64(t))
	bc2 := 1 - math.Pow(a.Beta2, float64(t))
	step := a.LR / bc1
	invSqrtBC2 := 1 / math.Sqrt(bc2)
	ts := make([]tensor.Tensor, len(params))
	for i, p := range params {
		if dt := p.Value.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
			return fmt.Errorf("amortized: adam: parameter %s has dtype %v", p.Name, dt)
		}
		ts[i] = p.Value
	}
	if n := runtime.GOMAXPROCS(0); len(a.scratch32) < n {
		a.scratch32, a.scratch64 = make([][]float32, n), make([][]float64, n)
	}
	c32 := simd.NewAdamConsts(float32(a.Beta1), float32(a.Beta2), float32(step), float32(invSqrtBC2), float32(a.Eps), flushBelow)
	forChunks(ts, func(w, i, lo, hi int) {
		p, m, v := params[i], a.M.All()[i], a.V.All()[i]
		switch ws := p.Value.Data().(type) {
		case []float32:
			if len(grads) == 2 && len(replicas) == 1 { // the default: two shards
				simd.Adam2(ws[lo:hi], grads[0][i].Data().([]float32)[lo:hi], grads[1][i].Data().([]float32)[lo:hi],
					m.Float32s()[lo:hi], v.Float32s()[lo:hi], replicas[0].All()[i].Float32s()[lo:hi], &c32)
				return
			}
			g := shardSum(grads, i, lo, hi, &a.scratch32[w])
			simd.Adam(ws[lo:hi], g, m.Float32s()[lo:hi], v.Float32s()[lo:hi], &c32)
			for _, r := range replicas {
				copy(r.All()[i].Float32s()[lo:hi], ws[lo:hi])
			}
		case []float64:
			g := shardSum(grads, i, lo, hi, &a.scratch64[w])
			adamKernel(ws[lo:hi], g, m.Float64s()[lo:hi], v.Float64s()[lo:hi],
				a.Beta1, a.Beta2, step, invSqrtBC2, a.Eps)
			for _, r := range replicas {
				copy(r.All()[i].Float64s()[lo:hi], ws[lo:hi])
			}
		}
	})
	return nil
}

// shardSum is the sum over shards of grads[s][i][lo:hi]: the one shard's
// slice itself, or a sum in *scratch (kept for reuse).
func shardSum[T float32 | float64](grads [][]tensor.Tensor, i, lo, hi int, scratch *[]T) []T {
	if len(grads) == 1 {
		return grads[0][i].Data().([]T)[lo:hi]
	}
	if cap(*scratch) < hi-lo {
		*scratch = make([]T, chunkLen)
	}
	dst := (*scratch)[:hi-lo]
	addShards(dst, grads, i, lo, hi)
	return dst
}

// adamKernel is the float64 update; float32 uses internal/kernels/simd's kernel.
func adamKernel[T float32 | float64](w, g, m, v []T, b1, b2, step, invSqrtBC2, eps T) {
	for i := range w {
		gi := g[i]
		mi := b1*m[i] + (1-b1)*gi
		vi := b2*v[i] + (1-b2)*gi*gi
		if mi < flushBelow && mi > -flushBelow {
			mi = 0
		}
		if vi < flushBelow {
			vi = 0
		}
		m[i], v[i] = mi, vi
		w[i] -= step * mi / (T(math.Sqrt(float64(vi)))*invSqrtBC2 + eps)
	}
}
