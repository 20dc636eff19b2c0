package nets

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Pixel likelihoods for 8-bit images. A pixel value v in 0..255 arrives as
// x = v/255 in [0, 1], the way the data sources hand images over; the
// discretized logistic sees it at the centre 2v/255 - 1 of a bin of width
// 2/255 on [-1, 1] (Salimans et al. 2017). Parameters for a (B, D) batch
// come as a (B, P·D) matrix of P blocks of D columns: block p holds
// parameter p of every pixel, in the pixels' own order. A convolutional
// head with P·C output channels (channel p·C + c) produces exactly that
// layout, and so does a dense head of width P·D.

// Levels is the number of values of an 8-bit pixel.
const Levels = 256

// Log-scale bounds of the discretized logistic. The lower one is Salimans
// et al.'s (PixelCNN++ and the IAF code clamp at -7: a bin then holds at
// most 1 - 2σ(-e^7/255) of the mass, so log p stays away from 0 and
// training from a collapse onto one level); the upper one only keeps the
// bin width 2e^-s/255 a normal float64. The gradient is zero beyond them.
const (
	MinLogScale = -7
	MaxLogScale = 100
)

// PixelKind names a pixel likelihood.
type PixelKind int

const (
	// PixelLogistic is the discretized logistic: P = 2 blocks (mean, log-scale).
	PixelLogistic PixelKind = iota + 1
	// PixelLogisticMix is a K-component mixture of discretized logistics,
	// one mixture per pixel and channel: P = 3K blocks (K mixture logits,
	// K means, K log-scales).
	PixelLogisticMix
	// PixelCategorical is a 256-way softmax per pixel: P = 256 blocks of logits.
	PixelCategorical
	// PixelLogisticMixRGB is PixelCNN++'s mixture for RGB images (Salimans
	// et al. 2017, eq. 3): one K-component mixture per pixel over the
	// joint (r, g, b), each component a product of discretized logistics
	// whose green and blue means depend linearly on the red and green
	// values already seen: μ_g' = μ_g + tanh(α) r, μ_b' = μ_b + tanh(β) r
	// + tanh(γ) g (r, g as bin centres in [-1, 1]). Its unit is the pixel,
	// not the channel: x is (B, 3·HW) and the parameters are P = 10K
	// blocks of HW columns: K logits; 3K means (channel-major: r's K,
	// g's K, b's K); 3K log-scales likewise; 3K coefficients (α's K, β's
	// K, γ's K, before tanh).
	PixelLogisticMixRGB
)

// unitChannels is the number of channels one parameter unit covers.
func unitChannels(kind PixelKind) int {
	if kind == PixelLogisticMixRGB {
		return 3
	}
	return 1
}

// PixelParams is the number P of parameter blocks of a pixel likelihood
// with k mixture components (k is ignored by the others).
func PixelParams(kind PixelKind, k int) int {
	switch kind {
	case PixelLogistic:
		return 2
	case PixelLogisticMix:
		return 3 * k
	case PixelCategorical:
		return Levels
	case PixelLogisticMixRGB:
		return 10 * k
	}
	return 0
}

// PixelParamWidth is the width of the parameter matrix for rows of D
// values (D = C·H·W): P·D, or P·D/3 for the RGB mixture.
func PixelParamWidth(kind PixelKind, k, D int) int {
	return PixelParams(kind, k) * D / unitChannels(kind)
}

// logisticBin is log P(v | mu, ls) of the discretized logistic with mean mu
// and log-scale ls (clamped to [MinLogScale, MaxLogScale]) and its
// derivatives. With a = e^-ls (c + 1/255), b = e^-ls (c - 1/255),
// c = 2v/255 - 1 - mu and σ the logistic sigmoid:
//
//	v = 0:    P = σ(a),             log P = -softplus(-a)
//	v = 255:  P = 1 - σ(b),         log P = -softplus(b)
//	else:     P = σ(a) - σ(b) = σ(a) σ(-b) (1 - e^-(a-b)),
//	          log P = -softplus(-a) - softplus(b) + log(-expm1(-(a-b)))
//
// exact and finite in both tails (no difference of nearly equal CDFs).
func logisticBin(v int, mu, ls float64) (lp, dmu, dls float64) {
	clamped := false
	if ls < MinLogScale {
		ls, clamped = MinLogScale, true
	} else if ls > MaxLogScale {
		ls, clamped = MaxLogScale, true
	}
	inv := math.Exp(-ls)
	c := 2*float64(v)/255 - 1 - mu
	a, b := inv*(c+1.0/255), inv*(c-1.0/255)
	// Seven transcendentals in the interior, three at the edges: log σ(a)
	// and σ(-a) share e^-|a|, log σ(-b) and σ(b) share e^-|b|, and
	// d/expm1(d) = -d e^-d / expm1(-d) reuses expm1(-d).
	switch v {
	case 0:
		la, sa := logSigmoid(a)
		lp, dmu, dls = la, -inv*sa, -a*sa
	case Levels - 1:
		lb, sb := logSigmoid(-b)
		lp, dmu, dls = lb, inv*sb, b*sb
	default:
		d := 2 * inv / 255 // a - b, exactly as the bin width
		la, sa := logSigmoid(a)
		lb, sb := logSigmoid(-b)
		em := math.Expm1(-d) // in (-1, 0)
		lp = la + lb + math.Log(-em)
		dmu = -inv * (sa - sb)
		dls = -a*sa + b*sb + d*(1+em)/em
	}
	if clamped {
		dls = 0
	}
	return lp, dmu, dls
}

// LogisticPMF writes into p (length 256) the probabilities of the 256
// levels under a discretized logistic; they sum to 1 up to rounding.
func LogisticPMF(mu, logScale float64, p []float64) {
	for v := range p[:Levels] {
		lp, _, _ := logisticBin(v, mu, logScale)
		p[v] = math.Exp(lp)
	}
}

// LogisticMixPMF is LogisticPMF of the mixture with component logits,
// means and log-scales (each of length K).
func LogisticMixPMF(logits, mu, logScale []float64, p []float64) {
	K := len(logits)
	par := make([]float64, 3*K)
	copy(par, logits)
	copy(par[K:], mu)
	copy(par[2*K:], logScale)
	for v := range p[:Levels] {
		p[v] = math.Exp(mixturePixel(v, par, nil, make([]float64, K)))
	}
}

// CategoricalPMF is the softmax of 256 logits.
func CategoricalPMF(logits []float64, p []float64) {
	l := logits[:Levels]
	m := math.Inf(-1)
	for _, x := range l {
		m = max(m, x)
	}
	var sum float64
	for _, x := range l {
		sum += math.Exp(x - m)
	}
	lse := m + math.Log(sum)
	for v := range p[:Levels] {
		p[v] = math.Exp(logits[v] - lse)
	}
}

// mixturePixel is log sum_k π_k P_k(v) with π = softmax(par[:K]) and
// component k's mean par[K+k] and log-scale par[2K+k]; into grad (when not
// nil) it writes the derivatives: r_k - π_k for the logits and r_k times
// the component's derivatives for the others, with r the responsibilities
// softmax_k(log π_k + log P_k(v)). lk is scratch of length K.
func mixturePixel(v int, par, grad, lk []float64) float64 {
	K := len(lk)
	lgMax := math.Inf(-1)
	for k := range K {
		lgMax = max(lgMax, par[k])
	}
	var zs float64
	for k := range K {
		zs += math.Exp(par[k] - lgMax)
	}
	logZ := lgMax + math.Log(zs) // log-sum-exp of the logits
	m := math.Inf(-1)
	for k := range K {
		lp, dmu, dls := logisticBin(v, par[K+k], par[2*K+k])
		lk[k] = par[k] - logZ + lp
		m = max(m, lk[k])
		if grad != nil {
			grad[K+k], grad[2*K+k] = dmu, dls
		}
	}
	var s float64
	for k := range K {
		s += math.Exp(lk[k] - m)
	}
	out := m + math.Log(s)
	if grad != nil {
		for k := range K {
			r := math.Exp(lk[k] - out)
			grad[k] = r - math.Exp(par[k]-logZ)
			grad[K+k] *= r
			grad[2*K+k] *= r
		}
	}
	return out
}

// categoricalPixel is log softmax(l)_v and, into grad, onehot(v) - softmax(l).
func categoricalPixel(v int, l, grad []float64) float64 {
	m := math.Inf(-1)
	for _, x := range l {
		m = max(m, x)
	}
	var s float64
	for _, x := range l {
		s += math.Exp(x - m)
	}
	lse := m + math.Log(s)
	if grad != nil {
		for i, x := range l {
			grad[i] = -math.Exp(x - lse)
		}
		grad[v]++
	}
	return l[v] - lse
}

// mixRGBPixel is log p(r, g, b) of the coupled RGB mixture for levels v
// and the 10K parameters par of one pixel, with the derivatives into grad
// when not nil; lk is scratch of length K.
func mixRGBPixel(v [3]int, par, grad, lk []float64) float64 {
	K := len(lk)
	lgMax := math.Inf(-1)
	for k := range K {
		lgMax = max(lgMax, par[k])
	}
	var zs float64
	for k := range K {
		zs += math.Exp(par[k] - lgMax)
	}
	logZ := lgMax + math.Log(zs)
	xr, xg := 2*float64(v[0])/255-1, 2*float64(v[1])/255-1
	m := math.Inf(-1)
	for k := range K {
		ta, tb, tc := math.Tanh(par[7*K+k]), math.Tanh(par[8*K+k]), math.Tanh(par[9*K+k])
		mus := [3]float64{par[K+k], par[2*K+k] + ta*xr, par[3*K+k] + tb*xr + tc*xg}
		lk[k] = par[k] - logZ
		var dmu [3]float64
		for c := range 3 {
			lp, dm, dl := logisticBin(v[c], mus[c], par[(4+c)*K+k])
			lk[k] += lp
			dmu[c] = dm
			if grad != nil {
				grad[(1+c)*K+k], grad[(4+c)*K+k] = dm, dl
			}
		}
		if grad != nil {
			grad[7*K+k] = dmu[1] * xr * (1 - ta*ta)
			grad[8*K+k] = dmu[2] * xr * (1 - tb*tb)
			grad[9*K+k] = dmu[2] * xg * (1 - tc*tc)
		}
		m = max(m, lk[k])
	}
	var sum float64
	for k := range K {
		sum += math.Exp(lk[k] - m)
	}
	out := m + math.Log(sum)
	if grad != nil {
		for k := range K {
			r := math.Exp(lk[k] - out)
			grad[k] = r - math.Exp(par[k]-logZ)
			for q := 1; q < 10; q++ {
				grad[q*K+k] *= r
			}
		}
	}
	return out
}

// categoricalRow is Σ_j log softmax(l[·, j])_{v_j} for one row of logits
// stored as 256 blocks of D, and into grad (when not nil) onehot - softmax.
// It runs along the blocks, so every loop is over contiguous pixels; the
// exponentials e^(l - max) are kept in grad between the sum and the
// normalization (one exp per logit). m and s are scratch of length D.
func categoricalRow[T float32 | float64](v []int, l, grad []T, m, s []float64) float64 {
	D := len(v)
	for j := range m {
		m[j] = math.Inf(-1)
	}
	for q := range Levels {
		for j, x := range l[q*D : (q+1)*D] {
			m[j] = max(m[j], float64(x))
		}
	}
	clear(s)
	for q := range Levels {
		row := l[q*D : (q+1)*D]
		var gq []T
		if grad != nil {
			gq = grad[q*D : (q+1)*D]
		}
		for j, x := range row {
			e := expNonPos(T(float64(x) - m[j]))
			s[j] += float64(e)
			if gq != nil {
				gq[j] = e
			}
		}
	}
	var acc float64
	for j, vj := range v {
		lse := m[j] + math.Log(s[j])
		acc += float64(l[vj*D+j]) - lse
		s[j] = 1 / s[j]
	}
	if grad != nil {
		for q := range Levels {
			gq := grad[q*D : (q+1)*D]
			for j := range gq {
				gq[j] = -gq[j] * T(s[j])
			}
		}
		for j, vj := range v {
			grad[vj*D+j]++
		}
	}
	return acc
}

// expNonPos is e^x for x <= 0. math.Exp even for float32: simd's scalar
// ExpNeg runs its FMAs through math.FMA, which is a software routine on
// CPUs or builds without FMA (4x slower than math.Exp here).
func expNonPos[T float32 | float64](x T) T { return T(math.Exp(float64(x))) }

// logSigmoid returns log σ(x) and σ(-x) from the one exponential e^-|x|.
func logSigmoid(x float64) (logSig, sigNeg float64) {
	e := math.Exp(-math.Abs(x))
	if x >= 0 {
		return -math.Log1p(e), e / (1 + e)
	}
	return x - math.Log1p(e), 1 / (1 + e)
}

// pixelLevel maps x = v/255 to v; ok is false off the grid or out of [0, 1].
func pixelLevel(x float64) (v int, ok bool) {
	f := x * 255
	r := math.Round(f)
	if !(r >= 0 && r <= 255) || math.Abs(f-r) > 1e-3 {
		return 0, false
	}
	return int(r), true
}

// PixelLogLik adds log p(x | params) per row, in nats, for x (B, D) of
// 8-bit pixel values v/255 and params (B, PixelParamWidth(kind, k, D))
// laid out as described above. x gets no gradient. A value of x off the
// 1/255 grid or outside [0, 1] makes the run fail with an error naming it.
func PixelLogLik(kind PixelKind, k int, x, params *G.Node) (*G.Node, error) {
	P := PixelParams(kind, k)
	mix := kind == PixelLogisticMix || kind == PixelLogisticMixRGB
	if P <= 0 || (mix && (k < 1 || k > 256)) {
		return nil, fmt.Errorf("nets: pixel likelihood: kind %d with %d components (want logistic, categorical, or a mixture of 1..256)", kind, k)
	}
	if x.Shape().Dims() != 2 || params.Shape().Dims() != 2 || x.Shape()[0] != params.Shape()[0] ||
		x.Shape()[1]%unitChannels(kind) != 0 || params.Shape()[1] != PixelParamWidth(kind, k, x.Shape()[1]) {
		return nil, fmt.Errorf("nets: pixel likelihood: x %v and parameters %v, want (B, D) and (B, %d·D/%d)", x.Shape(), params.Shape(), P, unitChannels(kind))
	}
	return G.ApplyOp(pixelOp{opBase: newBase(), kind: kind, k: k, st: &pixelState{}}, x, params)
}

// pixelState is shared by a pixelOp and its gradient op: the forward pass
// computes d log p / d params along with log p (they share every
// transcendental) when a gradient op exists, and the gradient op scales
// them by the incoming gradient. The gradient op reads the forward op's
// output, so it always runs after it in the same run.
type pixelState struct {
	needGrad bool
	f32      []float32
	f64      []float64
}

type pixelOp struct {
	opBase
	kind PixelKind
	k    int
	st   *pixelState
}

func (op pixelOp) Arity() int    { return 2 }
func (op pixelOp) Type() hm.Type { return hm.NewFnType(matT(), matT(), vecT()) }
func (op pixelOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
}
func (op pixelOp) String() string                    { return fmt.Sprintf("pixelLogLik[%d,%d]", op.kind, op.k) }
func (op pixelOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "%s%p", op.String(), op.st) }
func (op pixelOp) Hashcode() uint32                  { return hashOf(op) }
func (op pixelOp) DiffWRT(int) []bool                { return []bool{false, true} }
func (op pixelOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op pixelOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, p := ds[0], ds[1]
	rows, D := x.Shape()[0], x.Shape()[1]
	s := op.out(prealloc, x.Dtype(), rows)
	if s.Dtype() == tensor.Float32 {
		var g []float32
		if op.st.needGrad {
			if cap(op.st.f32) < p.Shape().TotalSize() {
				op.st.f32 = make([]float32, p.Shape().TotalSize())
			}
			g = op.st.f32[:p.Shape().TotalSize()]
		}
		err = pixelRows(op, rows, D, x.Float32s(), p.Float32s(), s.Float32s(), g)
	} else {
		var g []float64
		if op.st.needGrad {
			if cap(op.st.f64) < p.Shape().TotalSize() {
				op.st.f64 = make([]float64, p.Shape().TotalSize())
			}
			g = op.st.f64[:p.Shape().TotalSize()]
		}
		err = pixelRows(op, rows, D, x.Float64s(), p.Float64s(), s.Float64s(), g)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// pixelRows computes every row's log-likelihood in float64 and, when grad
// is not nil, the derivatives with respect to every parameter.
func pixelRows[T float32 | float64](op pixelOp, rows, D int, x, par, out, grad []T) error {
	P, ch := PixelParams(op.kind, op.k), unitChannels(op.kind)
	U := D / ch // parameter units (pixels or pixel channels) per row
	errs := make([]error, rows)
	parallelRows(rows, rows*D*P*8, func(lo, hi int) {
		pv, gv, lk := make([]float64, P), make([]float64, P), make([]float64, max(op.k, 1))
		var levels []int
		var cm, cs []float64
		if op.kind == PixelCategorical {
			levels, cm, cs = make([]int, D), make([]float64, D), make([]float64, D)
		}
		for i := lo; i < hi; i++ {
			xr, pr := x[i*D:(i+1)*D], par[i*P*U:(i+1)*P*U]
			var gr []T
			g := gv
			if grad != nil {
				gr = grad[i*P*U : (i+1)*P*U]
			} else {
				g = nil
			}
			if op.kind == PixelCategorical {
				for j, xj := range xr {
					var ok bool
					if levels[j], ok = pixelLevel(float64(xj)); !ok {
						errs[i] = fmt.Errorf("nets: %v: x[%d, %d] = %v, want a pixel value v/255 with v in 0..255", op, i, j, xj)
						break
					}
				}
				if errs[i] == nil {
					out[i] = T(categoricalRow(levels, pr, gr, cm, cs))
				}
				continue
			}
			var acc float64
			for j := range U {
				var v [3]int
				for c := range ch {
					var ok bool
					if v[c], ok = pixelLevel(float64(xr[c*U+j])); !ok {
						errs[i] = fmt.Errorf("nets: %v: x[%d, %d] = %v, want a pixel value v/255 with v in 0..255", op, i, c*U+j, xr[c*U+j])
						break
					}
				}
				if errs[i] != nil {
					break
				}
				for q := range P {
					pv[q] = float64(pr[q*U+j])
				}
				var lp float64
				switch op.kind {
				case PixelLogistic:
					var dmu, dls float64
					lp, dmu, dls = logisticBin(v[0], pv[0], pv[1])
					gv[0], gv[1] = dmu, dls
				case PixelLogisticMix:
					lp = mixturePixel(v[0], pv, g, lk)
				case PixelCategorical:
					lp = categoricalPixel(v[0], pv, g)
				case PixelLogisticMixRGB:
					lp = mixRGBPixel(v, pv, g, lk)
				}
				acc += lp
				if gr != nil {
					for q := range P {
						gr[q*U+j] = T(gv[q])
					}
				}
			}
			out[i] = T(acc)
		}
	})
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (op pixelOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.st.needGrad = true
	d, err := G.ApplyOp(pixelGradOp{opBase: newBase(), fwd: op}, output, grad, in[1])
	return G.Nodes{nil, d}, err
}

// pixelGradOp is g_i d log p_i / d params_i from the forward op's cache.
// Its inputs are the forward output (for ordering), the incoming gradient
// and the parameters (for the shape).
type pixelGradOp struct {
	opBase
	fwd pixelOp
}

func (op pixelGradOp) Arity() int    { return 3 }
func (op pixelGradOp) Type() hm.Type { return hm.NewFnType(vecT(), vecT(), matT(), matT()) }
func (op pixelGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[2].(tensor.Shape).Clone(), nil
}
func (op pixelGradOp) String() string                    { return "d" + op.fwd.String() }
func (op pixelGradOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "%s%p", op.String(), op.fwd.st) }
func (op pixelGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op pixelGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op pixelGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	g, p := ds[1], ds[2]
	rows, cols := p.Shape()[0], p.Shape()[1]
	d := op.out(prealloc, p.Dtype(), rows, cols)
	if d.Dtype() == tensor.Float32 {
		if len(op.fwd.st.f32) != rows*cols {
			return nil, fmt.Errorf("nets: %v: no cached gradient", op)
		}
		scaleRows(d.Float32s(), op.fwd.st.f32, g.Float32s(), rows, cols)
	} else {
		if len(op.fwd.st.f64) != rows*cols {
			return nil, fmt.Errorf("nets: %v: no cached gradient", op)
		}
		scaleRows(d.Float64s(), op.fwd.st.f64, g.Float64s(), rows, cols)
	}
	return d, nil
}

func scaleRows[T float32 | float64](d, src, g []T, rows, cols int) {
	parallelRows(rows, rows*cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := g[i]
			s, dd := src[i*cols:(i+1)*cols], d[i*cols:(i+1)*cols]
			for j, v := range s {
				dd[j] = gi * v
			}
		}
	})
}
