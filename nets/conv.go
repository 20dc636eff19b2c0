package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2DGeom is the geometry of one 2-D convolution or transposed
// convolution on a batch of images stored NCHW, one image per row of a
// (B, C*H*W) matrix (channel-major, then row, then column).
type Conv2DGeom struct {
	InC, InH, InW int // input image
	OutC          int // output channels
	KH, KW        int // kernel
	Stride, Pad   int // the same along both axes
	// OutPadH and OutPadW add rows at the bottom and columns at the right
	// of a transposed convolution's output (PyTorch's output_padding),
	// which picks one of the Stride input sizes a strided convolution maps
	// to the same output; each must be below Stride. Zero for a convolution.
	OutPadH, OutPadW int
	Transposed       bool
}

// maxConvDim bounds every size so that products of sizes fit an int and a
// bad configuration fails instead of allocating without bound.
const maxConvDim = 1 << 14

// OutH and OutW are the output image sizes: (H + 2p - k)/s + 1 for a
// convolution, (H - 1)s - 2p + k + outpad for a transposed one.
func (g Conv2DGeom) OutH() int { return g.outSize(g.InH, g.KH, g.OutPadH) }
func (g Conv2DGeom) OutW() int { return g.outSize(g.InW, g.KW, g.OutPadW) }

func (g Conv2DGeom) outSize(in, k, op int) int {
	if g.Transposed {
		return (in-1)*g.Stride - 2*g.Pad + k + op
	}
	return (in+2*g.Pad-k)/g.Stride + 1
}

// InSize and OutSize are the widths of an input and an output row.
func (g Conv2DGeom) InSize() int  { return g.InC * g.InH * g.InW }
func (g Conv2DGeom) OutSize() int { return g.OutC * g.OutH() * g.OutW() }

// WeightShape is PyTorch's layout: (OutC, InC, KH, KW) for a convolution,
// (InC, OutC, KH, KW) for a transposed one.
func (g Conv2DGeom) WeightShape() []int {
	if g.Transposed {
		return []int{g.InC, g.OutC, g.KH, g.KW}
	}
	return []int{g.OutC, g.InC, g.KH, g.KW}
}

// FanIn is what PyTorch's default initialization divides by: the weight's
// second dimension times the kernel area (for a transposed convolution
// that is OutC k², as torch computes it from the weight's shape).
func (g Conv2DGeom) FanIn() int { return g.WeightShape()[1] * g.KH * g.KW }

func (g Conv2DGeom) String() string {
	kind := "conv"
	if g.Transposed {
		kind = "deconv"
	}
	return fmt.Sprintf("%s %dx%dx%d->%dx%dx%d k%dx%d s%d p%d op%dx%d", kind, g.InC, g.InH, g.InW,
		g.OutC, g.OutH(), g.OutW(), g.KH, g.KW, g.Stride, g.Pad, g.OutPadH, g.OutPadW)
}

// Validate reports a geometry that has no output or absurd sizes.
func (g Conv2DGeom) Validate() error {
	for _, v := range []struct {
		name string
		v    int
	}{{"input channels", g.InC}, {"input height", g.InH}, {"input width", g.InW}, {"output channels", g.OutC},
		{"kernel height", g.KH}, {"kernel width", g.KW}, {"stride", g.Stride}} {
		if v.v <= 0 || v.v > maxConvDim {
			return fmt.Errorf("nets: convolution: %s %d, want 1..%d", v.name, v.v, maxConvDim)
		}
	}
	if g.Pad < 0 || g.Pad >= max(g.KH, g.KW) {
		return fmt.Errorf("nets: convolution: padding %d, want 0..%d (below the kernel size)", g.Pad, max(g.KH, g.KW)-1)
	}
	for _, op := range []int{g.OutPadH, g.OutPadW} {
		if op < 0 || (op > 0 && (!g.Transposed || op >= g.Stride)) {
			return fmt.Errorf("nets: convolution: output padding %d, want 0 (or below the stride %d for a transposed convolution)", op, g.Stride)
		}
	}
	oh, ow := g.OutH(), g.OutW()
	if oh <= 0 || ow <= 0 || oh > maxConvDim || ow > maxConvDim {
		return fmt.Errorf("nets: %v: output size %dx%d, want 1..%d", g, oh, ow, maxConvDim)
	}
	if int64(g.InSize())*int64(g.KH*g.KW) > 1<<31 || int64(g.OutSize())*int64(g.KH*g.KW) > 1<<31 {
		return fmt.Errorf("nets: %v: too large", g)
	}
	return nil
}

// sides describes a (transposed) convolution as the convolution it is, or
// is the adjoint of: the "image" side (Cl, Hl, Wl) is read through patches
// and the "patch" side (Cs, Hs, Ws) has one position per patch. The weight
// is the (Cs, Cl·KH·KW) matrix Wm in both cases: a convolution computes
// patch = Wm · im2col(image), a transposed one image = col2im(Wmᵀ · patch).
type sides struct {
	Cl, Hl, Wl, Cs, Hs, Ws, KH, KW, S, P int
}

func (g Conv2DGeom) sides() sides {
	s := sides{KH: g.KH, KW: g.KW, S: g.Stride, P: g.Pad}
	if g.Transposed {
		s.Cl, s.Hl, s.Wl, s.Cs, s.Hs, s.Ws = g.OutC, g.OutH(), g.OutW(), g.InC, g.InH, g.InW
	} else {
		s.Cl, s.Hl, s.Wl, s.Cs, s.Hs, s.Ws = g.InC, g.InH, g.InW, g.OutC, g.OutH(), g.OutW()
	}
	return s
}

func (s sides) kk() int      { return s.KH * s.KW }
func (s sides) colRows() int { return s.Cl * s.kk() }
func (s sides) hwl() int     { return s.Hl * s.Wl }
func (s sides) hws() int     { return s.Hs * s.Ws }

// patchPairs lists, for each kernel offset (kh, kw), the pairs (i, j) of
// a patch-side position i = oh·Ws + ow and the image-side position
// j = ih·Wl + iw it reads, ih = oh·S - P + kh and iw = ow·S - P + kw,
// for the positions inside the image; zero lists the positions i outside.
type patchPairs struct {
	i, j, zero []int32
}

func (s sides) pairs() []patchPairs {
	out := make([]patchPairs, s.kk())
	for kh := range s.KH {
		for kw := range s.KW {
			p := &out[kh*s.KW+kw]
			for oh := range s.Hs {
				ih := oh*s.S - s.P + kh
				if ih < 0 || ih >= s.Hl {
					continue
				}
				for ow := range s.Ws {
					iw := ow*s.S - s.P + kw
					if iw < 0 || iw >= s.Wl {
						continue
					}
					p.i = append(p.i, int32(oh*s.Ws+ow))
					p.j = append(p.j, int32(ih*s.Wl+iw))
				}
			}
			covered := make([]bool, s.hws())
			for _, i := range p.i {
				covered[i] = true
			}
			for i, c := range covered {
				if !c {
					p.zero = append(p.zero, int32(i))
				}
			}
		}
	}
	return out
}

// im2col writes cols (Cl·KH·KW, B·Hs·Ws): row (c, kh, kw), column
// (b, oh, ow) holds img[b, c, oh·S-P+kh, ow·S-P+kw], zero outside. The
// position pairs are computed once per call, so the inner loop is a plain
// gather whatever the stride and padding (the rows are as short as 7 here,
// too short for per-row bookkeeping).
func im2col[T float32 | float64](s sides, B int, img, cols []T) {
	hwl, hws := s.hwl(), s.hws()
	n := B * hws
	pp := s.pairs()
	parallelRows(s.colRows(), s.colRows()*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			c, p := r/s.kk(), pp[r%s.kk()]
			dst := cols[r*n : (r+1)*n]
			for b := range B {
				src := img[(b*s.Cl+c)*hwl : (b*s.Cl+c+1)*hwl]
				d := dst[b*hws : (b+1)*hws]
				for _, i := range p.zero { // the border only, not a pass over the row
					d[i] = 0
				}
				for t, i := range p.i {
					d[i] = src[p.j[t]]
				}
			}
		}
	})
}

// col2im adds the columns back into img (B, Cl, Hl, Wl): the adjoint of
// im2col. img is not cleared first.
func col2im[T float32 | float64](s sides, B int, cols, img []T) {
	hwl, hws := s.hwl(), s.hws()
	n := B * hws
	pp := s.pairs()
	// One unit per (image, channel): each owns its output plane.
	parallelRows(B*s.Cl, s.colRows()*n, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, c := u/s.Cl, u%s.Cl
			dst := img[u*hwl : (u+1)*hwl]
			for k, p := range pp {
				r := c*s.kk() + k
				src := cols[r*n+b*hws : r*n+(b+1)*hws]
				for t, j := range p.j {
					dst[j] += src[p.i[t]]
				}
			}
		}
	})
}

// toCM permutes (B, C, HW) to (C, B·HW) and fromCM back: the GEMMs work
// on channel-major matrices with every image side by side.
func toCM[T float32 | float64](B, C, HW int, src, dst []T) {
	parallelRows(C, B*C*HW, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for b := range B {
				copy(dst[(c*B+b)*HW:(c*B+b+1)*HW], src[(b*C+c)*HW:(b*C+c+1)*HW])
			}
		}
	})
}

func fromCM[T float32 | float64](B, C, HW int, src, dst []T) {
	toCM(C, B, HW, src, dst) // the same permutation with B and C swapped
}

// Gemm is C = op(A) op(B) for row-major A (m×k, or k×m when tA), B (k×n,
// or n×k when tB) and C (m×n), with the installed BLAS (gorgonia's; the
// project's GEMM unless replaced): the product every dense op here calls,
// for fused ops elsewhere that must round as those do.
func Gemm[T float32 | float64](tA, tB bool, m, n, k int, a, b, c []T) {
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if tA {
		ta, lda = blas.Trans, m
	}
	if tB {
		tb, ldb = blas.Trans, k
	}
	impl := tensor.WhichBLAS()
	switch a := any(a).(type) {
	case []float32:
		impl.Sgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float32), ldb, 0, any(c).([]float32), n)
	case []float64:
		impl.Dgemm(ta, tb, m, n, k, 1, a, lda, any(b).([]float64), ldb, 0, any(c).([]float64), n)
	}
}

// scratch is a per-node buffer reused across runs.
type scratch struct {
	f32 []float32
	f64 []float64
}

func scratchOf[T float32 | float64](s *scratch, n int) []T {
	var z T
	switch any(z).(type) {
	case float32:
		if cap(s.f32) < n {
			s.f32 = make([]float32, n)
		}
		return any(s.f32[:n]).([]T)
	default:
		if cap(s.f64) < n {
			s.f64 = make([]float64, n)
		}
		return any(s.f64[:n]).([]T)
	}
}

// Conv2D adds act(conv(x, w) + b) to x's graph, or act(convT(x, w) + b) for
// a transposed geometry: x (B, g.InSize()), w of g.WeightShape(), b (OutC);
// the output is (B, g.OutSize()), NCHW per row. With dataInput set x gets
// no gradient. act is "", ReLU, ELU, Tanh or Softplus.
//
// A convolution is lowered to one GEMM over the whole batch,
// Y = Wm · im2col(x); a transposed convolution is its adjoint,
// y = col2im(Wmᵀ · x). Backward: dWm = dY · im2col(x)ᵀ and
// dx = col2im(Wmᵀ dY) for a convolution; dWm = x · im2col(dy)ᵀ and
// dx = Wm · im2col(dy) for a transposed one.
func Conv2D(x, w, b *G.Node, g Conv2DGeom, act Activation, dataInput bool) (*G.Node, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := checkAct(act); err != nil {
		return nil, fmt.Errorf("nets: %v: %w", g, err)
	}
	ws := tensor.Shape(g.WeightShape())
	if x.Shape().Dims() != 2 || x.Shape()[1] != g.InSize() || !w.Shape().Eq(ws) ||
		b.Shape().Dims() != 1 || b.Shape()[0] != g.OutC {
		return nil, fmt.Errorf("nets: %v: shapes x %v, w %v, b %v; want (B, %d), %v, (%d)",
			g, x.Shape(), w.Shape(), b.Shape(), g.InSize(), ws, g.OutC)
	}
	B := x.Shape()[0]
	s := g.sides()
	if g.Transposed {
		xcm, err := G.ApplyOp(permuteOp{opBase: newBase(), B: B, C: s.Cs, HW: s.hws(), toCM: true, noGrad: dataInput}, x)
		if err != nil {
			return nil, err
		}
		return G.ApplyOp(convOutOp{opBase: newBase(), s: s, B: B, act: act, transposed: true, dataInput: dataInput, buf: &scratch{}}, xcm, w, b)
	}
	cols, err := G.ApplyOp(im2colOp{opBase: newBase(), s: s, B: B, noGrad: dataInput}, x)
	if err != nil {
		return nil, err
	}
	return G.ApplyOp(convOutOp{opBase: newBase(), s: s, B: B, act: act, dataInput: dataInput, buf: &scratch{}}, cols, w, b)
}

func tensorT(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// im2colOp is im2col of a (B, Cl·Hl·Wl) batch: (Cl·KH·KW, B·Hs·Ws).
type im2colOp struct {
	opBase
	s      sides
	B      int
	noGrad bool
}

func (op im2colOp) Arity() int    { return 1 }
func (op im2colOp) Type() hm.Type { return hm.NewFnType(matT(), matT()) }
func (op im2colOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.s.colRows(), op.B * op.s.hws()}, nil
}
func (op im2colOp) String() string                    { return fmt.Sprintf("im2col%v,B%d", op.s, op.B) }
func (op im2colOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op im2colOp) Hashcode() uint32                  { return hashOf(op) }
func (op im2colOp) DiffWRT(int) []bool                { return []bool{!op.noGrad} }
func (op im2colOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op im2colOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if x.Shape().TotalSize() != op.B*op.s.Cl*op.s.hwl() {
		return nil, fmt.Errorf("nets: %v: input %v", op, x.Shape())
	}
	c := op.out(prealloc, x.Dtype(), op.s.colRows(), op.B*op.s.hws())
	if c.Dtype() == tensor.Float32 {
		im2col(op.s, op.B, x.Float32s(), c.Float32s())
	} else {
		im2col(op.s, op.B, x.Float64s(), c.Float64s())
	}
	return c, nil
}

func (op im2colOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(col2imOp{opBase: newBase(), s: op.s, B: op.B}, grad)
	return G.Nodes{dx}, err
}

// col2imOp is col2im into a zeroed (B, Cl·Hl·Wl) batch.
type col2imOp struct {
	opBase
	s sides
	B int
}

func (op col2imOp) Arity() int    { return 1 }
func (op col2imOp) Type() hm.Type { return hm.NewFnType(matT(), matT()) }
func (op col2imOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.B, op.s.Cl * op.s.hwl()}, nil
}
func (op col2imOp) String() string                    { return fmt.Sprintf("col2im%v,B%d", op.s, op.B) }
func (op col2imOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op col2imOp) Hashcode() uint32                  { return hashOf(op) }
func (op col2imOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op col2imOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	c, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if c.Shape().TotalSize() != op.s.colRows()*op.B*op.s.hws() {
		return nil, fmt.Errorf("nets: %v: input %v", op, c.Shape())
	}
	x := op.out(prealloc, c.Dtype(), op.B, op.s.Cl*op.s.hwl())
	if x.Dtype() == tensor.Float32 {
		clear(x.Float32s())
		col2im(op.s, op.B, c.Float32s(), x.Float32s())
	} else {
		clear(x.Float64s())
		col2im(op.s, op.B, c.Float64s(), x.Float64s())
	}
	return x, nil
}

// permuteOp is (B, C·HW) -> (C, B·HW) (toCM) or back.
type permuteOp struct {
	opBase
	B, C, HW int
	toCM     bool
	noGrad   bool
}

func (op permuteOp) Arity() int    { return 1 }
func (op permuteOp) Type() hm.Type { return hm.NewFnType(matT(), matT()) }
func (op permuteOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if op.toCM {
		return tensor.Shape{op.C, op.B * op.HW}, nil
	}
	return tensor.Shape{op.B, op.C * op.HW}, nil
}
func (op permuteOp) String() string {
	return fmt.Sprintf("permute[B%d,C%d,HW%d,toCM=%t]", op.B, op.C, op.HW, op.toCM)
}
func (op permuteOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op permuteOp) Hashcode() uint32                  { return hashOf(op) }
func (op permuteOp) DiffWRT(int) []bool                { return []bool{!op.noGrad} }
func (op permuteOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op permuteOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if x.Shape().TotalSize() != op.B*op.C*op.HW {
		return nil, fmt.Errorf("nets: %v: input %v", op, x.Shape())
	}
	sh, _ := op.InferShape()
	y := op.out(prealloc, x.Dtype(), sh...)
	B, C := op.B, op.C
	if !op.toCM {
		B, C = C, B
	}
	if y.Dtype() == tensor.Float32 {
		toCM(B, C, op.HW, x.Float32s(), y.Float32s())
	} else {
		toCM(B, C, op.HW, x.Float64s(), y.Float64s())
	}
	return y, nil
}

func (op permuteOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(permuteOp{opBase: newBase(), B: op.B, C: op.C, HW: op.HW, toCM: !op.toCM}, grad)
	return G.Nodes{dx}, err
}

// convOutOp is, for a convolution, y = act(fromCM(Wm · cols) + b) from
// cols = im2col(x); for a transposed one, y = act(col2im(Wmᵀ · xcm) + b)
// from xcm = toCM(x). buf holds the GEMM's result between runs.
type convOutOp struct {
	opBase
	s          sides
	B          int
	act        Activation
	transposed bool
	dataInput  bool
	buf        *scratch
}

func (op convOutOp) Arity() int    { return 3 }
func (op convOutOp) Type() hm.Type { return hm.NewFnType(matT(), tensorT(4), vecT(), matT()) }
func (op convOutOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if op.transposed {
		return tensor.Shape{op.B, op.s.Cl * op.s.hwl()}, nil
	}
	return tensor.Shape{op.B, op.s.Cs * op.s.hws()}, nil
}
func (op convOutOp) String() string {
	return fmt.Sprintf("convOut%v,B%d,%s,T=%t,data=%t", op.s, op.B, op.act, op.transposed, op.dataInput)
}
func (op convOutOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op convOutOp) Hashcode() uint32                  { return hashOf(op) }
func (op convOutOp) DiffWRT(int) []bool                { return []bool{!op.dataInput, true, true} }
func (op convOutOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op convOutOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	s, B := op.s, op.B
	n := B * s.hws()
	if ds[0].Shape().TotalSize() != map[bool]int{false: s.colRows(), true: s.Cs}[op.transposed]*n ||
		ds[1].Shape().TotalSize() != s.Cs*s.colRows() || ds[2].Shape().TotalSize() != map[bool]int{false: s.Cs, true: s.Cl}[op.transposed] {
		return nil, fmt.Errorf("nets: %v: inputs %v, %v, %v", op, ds[0].Shape(), ds[1].Shape(), ds[2].Shape())
	}
	sh, _ := op.InferShape()
	y := op.out(prealloc, ds[0].Dtype(), sh...)
	if y.Dtype() == tensor.Float32 {
		convOut(op, ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), y.Float32s())
	} else {
		convOut(op, ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), y.Float64s())
	}
	return y, nil
}

func convOut[T float32 | float64](op convOutOp, in, w, bias, y []T) {
	s, B := op.s, op.B
	n := B * s.hws()
	if op.transposed {
		cols := scratchOf[T](op.buf, s.colRows()*n)
		Gemm(true, false, s.colRows(), n, s.Cs, w, in, cols)
		hwl := s.hwl()
		parallelRows(B*s.Cl, B*s.Cl*hwl, func(lo, hi int) {
			for u := lo; u < hi; u++ {
				fill(y[u*hwl:(u+1)*hwl], bias[u%s.Cl])
			}
		})
		col2im(s, B, cols, y)
		parallelRows(B*s.Cl, B*s.Cl*hwl, func(lo, hi int) {
			actInPlace(y[lo*hwl:hi*hwl], op.act)
		})
		return
	}
	ycm := scratchOf[T](op.buf, s.Cs*n)
	Gemm(false, false, s.Cs, n, s.colRows(), w, in, ycm)
	hws := s.hws()
	parallelRows(B*s.Cs, B*s.Cs*hws, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			b, c := u/s.Cs, u%s.Cs
			dst := y[u*hws : (u+1)*hws]
			src := ycm[(c*B+b)*hws : (c*B+b+1)*hws]
			bc := bias[c]
			for i, v := range src {
				dst[i] = v + bc
			}
			actInPlace(dst, op.act)
		}
	})
}

func fill[T float32 | float64](d []T, v T) {
	for i := range d {
		d[i] = v
	}
}

func (op convOutOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s, B := op.s, op.B
	n := B * s.hws()
	dA := grad
	var err error
	if op.act != "" {
		if dA, err = G.ApplyOp(actGradOp{opBase: newBase(), act: op.act}, output, grad); err != nil {
			return nil, err
		}
	}
	wShape := in[1].Shape().Clone()
	if op.transposed {
		// in[0] is xcm (Cs, n); dcols = im2col(dA) (Cl k², n).
		db, err := G.ApplyOp(chanSumOp{opBase: newBase(), B: B, C: s.Cl, HW: s.hwl()}, dA)
		if err != nil {
			return nil, err
		}
		dcols, err := G.ApplyOp(im2colOp{opBase: newBase(), s: s, B: B}, dA)
		if err != nil {
			return nil, err
		}
		dW, err := G.ApplyOp(gemmOp{opBase: newBase(), tB: true, m: s.Cs, n: s.colRows(), k: n, ra: 2, rb: 2, shape: wShape, name: "convT.dW"}, in[0], dcols)
		if err != nil {
			return nil, err
		}
		var dx *G.Node
		if !op.dataInput {
			if dx, err = G.ApplyOp(gemmOp{opBase: newBase(), m: s.Cs, n: n, k: s.colRows(), ra: 4, rb: 2, shape: tensor.Shape{s.Cs, n}, name: "convT.dx"}, in[1], dcols); err != nil {
				return nil, err
			}
		}
		return G.Nodes{dx, dW, db}, nil
	}
	db, err := G.ApplyOp(chanSumOp{opBase: newBase(), B: B, C: s.Cs, HW: s.hws()}, dA)
	if err != nil {
		return nil, err
	}
	dAcm, err := G.ApplyOp(permuteOp{opBase: newBase(), B: B, C: s.Cs, HW: s.hws(), toCM: true}, dA)
	if err != nil {
		return nil, err
	}
	dW, err := G.ApplyOp(gemmOp{opBase: newBase(), tB: true, m: s.Cs, n: s.colRows(), k: n, ra: 2, rb: 2, shape: wShape, name: "conv.dW"}, dAcm, in[0])
	if err != nil {
		return nil, err
	}
	var dcols *G.Node
	if !op.dataInput {
		if dcols, err = G.ApplyOp(gemmOp{opBase: newBase(), tA: true, m: s.colRows(), n: n, k: s.Cs, ra: 4, rb: 2, shape: tensor.Shape{s.colRows(), n}, name: "conv.dcols"}, in[1], dAcm); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dcols, dW, db}, nil
}

// gemmOp is op(A) op(B) for A and B of any shape holding m×k and k×n
// row-major matrices (a 4-D convolution weight is its (C, rest) matrix).
type gemmOp struct {
	opBase
	tA, tB  bool
	m, n, k int
	ra, rb  int // the operands' ranks
	shape   tensor.Shape
	name    string
}

func (op gemmOp) Arity() int { return 2 }
func (op gemmOp) Type() hm.Type {
	return hm.NewFnType(tensorT(op.ra), tensorT(op.rb), tensorT(len(op.shape)))
}
func (op gemmOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }
func (op gemmOp) String() string {
	return fmt.Sprintf("gemm[%s,%t,%t,%d,%d,%d,%v]", op.name, op.tA, op.tB, op.m, op.n, op.k, op.shape)
}
func (op gemmOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op gemmOp) Hashcode() uint32                  { return hashOf(op) }
func (op gemmOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op gemmOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	if ds[0].Shape().TotalSize() != op.m*op.k || ds[1].Shape().TotalSize() != op.k*op.n {
		return nil, fmt.Errorf("nets: %v: operands %v and %v", op, ds[0].Shape(), ds[1].Shape())
	}
	c := op.out(prealloc, ds[0].Dtype(), op.shape...)
	if c.Dtype() == tensor.Float32 {
		Gemm(op.tA, op.tB, op.m, op.n, op.k, ds[0].Float32s(), ds[1].Float32s(), c.Float32s())
	} else {
		Gemm(op.tA, op.tB, op.m, op.n, op.k, ds[0].Float64s(), ds[1].Float64s(), c.Float64s())
	}
	return c, nil
}

// chanSumOp sums a (B, C·HW) batch over images and positions: the bias
// gradient of a convolution.
type chanSumOp struct {
	opBase
	B, C, HW int
}

func (op chanSumOp) Arity() int    { return 1 }
func (op chanSumOp) Type() hm.Type { return hm.NewFnType(matT(), vecT()) }
func (op chanSumOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.C}, nil
}
func (op chanSumOp) String() string                    { return fmt.Sprintf("chanSum[%d,%d,%d]", op.B, op.C, op.HW) }
func (op chanSumOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op chanSumOp) Hashcode() uint32                  { return hashOf(op) }
func (op chanSumOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op chanSumOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	a, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if a.Shape().TotalSize() != op.B*op.C*op.HW {
		return nil, fmt.Errorf("nets: %v: input %v", op, a.Shape())
	}
	s := op.out(prealloc, a.Dtype(), op.C)
	if s.Dtype() == tensor.Float32 {
		chanSum(op.B, op.C, op.HW, a.Float32s(), s.Float32s())
	} else {
		chanSum(op.B, op.C, op.HW, a.Float64s(), s.Float64s())
	}
	return s, nil
}

func chanSum[T float32 | float64](B, C, HW int, a, s []T) {
	parallelRows(C, B*C*HW, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var acc float64 // many terms: sum in float64
			for b := range B {
				var part T
				for _, v := range a[(b*C+c)*HW : (b*C+c+1)*HW] {
					part += v
				}
				acc += float64(part)
			}
			s[c] = T(acc)
		}
	})
}
