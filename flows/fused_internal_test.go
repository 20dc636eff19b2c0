package flows

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The backward pass from the forward pass's saved work (resume) equals the
// one that recomputes the forward pass (backward), for a stack of every
// step kind.
func TestStackResumeMatchesBackward(t *testing.T) {
	const L, M = 4, 2
	ss := []step{
		planarStep{L: L}, radialStep{L: L}, householderStep{L: L},
		sylvesterStep{L: L, M: M, q: qExplicit}, sylvesterStep{L: L, M: L, q: qReverse},
	}
	s := newStack(ss, L)
	rng := rand.New(rand.NewPCG(1, 2))
	ws := s.inWidths()
	in := make([][]float64, len(ws))
	for a, w := range ws {
		in[a] = make([]float64, w)
		for j := range in[a] {
			in[a][j] = rng.NormFloat64()
		}
	}
	// The explicit Q must be orthonormal: use the first M columns of I.
	q := in[s.off[3]]
	clear(q)
	for k := range M {
		q[k*M+k] = 1
	}
	gout := make([]float64, L+1)
	for j := range gout {
		gout[j] = rng.NormFloat64()
	}
	grads := func(f func(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error, work []float64) [][]float64 {
		gin := make([][]float64, len(ws))
		for a, w := range ws {
			gin[a] = make([]float64, w)
		}
		args := append([][]float64(nil), in...)
		if err := f(args, nil, gout, gin, work); err != nil {
			t.Fatal(err)
		}
		return gin
	}
	work := make([]float64, s.workSize())
	out := make([]float64, L+1)
	if err := s.forward(append([][]float64(nil), in...), out, work); err != nil {
		t.Fatal(err)
	}
	a := grads(s.resume, work)
	b := grads(s.backward, make([]float64, s.workSize()))
	nonzero := 0
	for i := range a {
		for j := range a[i] {
			if math.Abs(a[i][j]-b[i][j]) > 1e-14*(1+math.Abs(b[i][j])) {
				t.Errorf("input %d[%d]: resume %g, backward %g", i, j, a[i][j], b[i][j])
			}
			if b[i][j] != 0 {
				nonzero++
			}
		}
	}
	if nonzero < len(ws) {
		t.Fatalf("only %d non-zero gradients: the comparison proves little", nonzero)
	}
}

// The float32 gate (simd's exponential and log1p) gives the float64 gate's
// outputs and saved work within float32 rounding, across the range of the
// gate's pre-activation: saturated on both sides, near 0, and in between.
func TestIAFGateFloat32MatchesFloat64(t *testing.T) {
	const D = 7
	rng := rand.New(rand.NewPCG(3, 4))
	g32, g64 := iafGate{D: D, f32: true}, iafGate{D: D}
	for _, scale := range []float64{0.01, 1, 5, 20, 100} {
		for range 200 {
			x, z := make([]float64, 2*D), make([]float64, D)
			for j := range x {
				x[j] = float64(float32(scale * rng.NormFloat64()))
			}
			for j := range z {
				z[j] = float64(float32(rng.NormFloat64()))
			}
			o32, o64 := make([]float64, D+1), make([]float64, D+1)
			w32, w64 := make([]float64, 3*D), make([]float64, 3*D)
			if err := g32.forward([][]float64{x, z}, o32, w32); err != nil {
				t.Fatal(err)
			}
			if err := g64.forward([][]float64{x, z}, o64, w64); err != nil {
				t.Fatal(err)
			}
			// Outputs are sums of float32 products: relative to the terms' size.
			for j := range D {
				size := math.Abs(w64[j]*z[j]) + math.Abs(w64[D+j]*x[j]) + 1e-30
				if d := math.Abs(o32[j] - o64[j]); d > 4e-7*size {
					t.Fatalf("scale %v: f(z)[%d] = %v in float32, %v in float64", scale, j, o32[j], o64[j])
				}
			}
			// log|det| sums D logs of σ: D ulps of the largest.
			var size float64
			for j := range D {
				size = max(size, math.Abs(math.Log(max(w64[j], 1e-300))))
			}
			if d := math.Abs(o32[D] - o64[D]); d > 1e-6*(size*D+1) {
				t.Fatalf("scale %v: log|det| = %v in float32, %v in float64", scale, o32[D], o64[D])
			}
			for j := range w32 {
				// a = s + 2 rounds to float32 first (an error of |a| ulps in
				// e^a); σ and 1 - σ below float32's normal range flush to 0.
				a := math.Abs(x[D+j%D] + IAFForgetBias)
				if d := math.Abs(w32[j] - w64[j]); d > (4e-7+1.2e-7*a)*math.Abs(w64[j])+1e-37 {
					t.Fatalf("scale %v: work[%d] = %v in float32, %v in float64", scale, j, w32[j], w64[j])
				}
			}
		}
	}
}

// The fused chain's batched float32 gate (forwardRows32, one vector call
// for the exponentials) and its batched backward (gateResume) give the
// row-by-row gate's forward and resume values bit for bit: random rows at
// several scales, and pre-activations at -0, 0 and saturation.
func TestIAFGateRowsMatchRowByRow(t *testing.T) {
	const B, D = 37, 9 // B*D not a multiple of 8: vector body and scalar tail
	rng := rand.New(rand.NewPCG(5, 6))
	g := iafGate{D: D, f32: true}
	for _, scale := range []float64{0.01, 1, 5, 100} {
		x, z, gout := make([]float32, B*2*D), make([]float32, B*D), make([]float32, B*(D+1))
		for i := range x {
			x[i] = float32(scale * rng.NormFloat64())
		}
		for i := range z {
			z[i] = float32(rng.NormFloat64())
		}
		for i := range gout {
			gout[i] = float32(rng.NormFloat64())
		}
		x[D], x[D+1], x[D+2], x[D+3] = -IAFForgetBias, float32(math.Copysign(0, -1))-IAFForgetBias, 1e5, -1e5
		out, work := make([]float32, B*(D+1)), make([]float64, B*3*D)
		na, e, l := make([]float32, B*D), make([]float32, B*D), make([]float32, B*D)
		g.forwardRows32(x, z, out, work, na, e, l)
		gx, gz := make([]float32, B*2*D), make([]float32, B*D)
		gateResume(D, x, z, gout, gx, gz, work)
		for i := range B {
			xr, zr, gr := make([]float64, 2*D), make([]float64, D), make([]float64, D+1)
			toF64(xr, x[i*2*D:(i+1)*2*D])
			toF64(zr, z[i*D:(i+1)*D])
			toF64(gr, gout[i*(D+1):(i+1)*(D+1)])
			o, w := make([]float64, D+1), make([]float64, 3*D)
			if err := g.forward([][]float64{xr, zr}, o, w); err != nil {
				t.Fatal(err)
			}
			gxr, gzr := make([]float64, 2*D), make([]float64, D)
			if err := g.resume([][]float64{xr, zr}, o, gr, [][]float64{gxr, gzr}, w); err != nil {
				t.Fatal(err)
			}
			same := func(what string, j int, got float32, want float64) {
				if math.Float32bits(got) != math.Float32bits(float32(want)) {
					t.Fatalf("scale %v, row %d: %s[%d] = %v, row by row %v", scale, i, what, j, got, want)
				}
			}
			for j, v := range o {
				same("out", j, out[i*(D+1)+j], v)
			}
			for j, v := range w {
				if work[i*3*D+j] != v {
					t.Fatalf("scale %v, row %d: work[%d] = %v, row by row %v", scale, i, j, work[i*3*D+j], v)
				}
			}
			for j, v := range gxr {
				same("gx", j, gx[i*2*D+j], v)
			}
			for j, v := range gzr {
				same("gz", j, gz[i*D+j], v)
			}
		}
	}
}

// addTo and reluGradInPlace give the scalar loops' values bit for bit in
// float32 (simd's vector paths and their tails), NaN and ±0 included.
func TestIAFVectorHelpersMatchLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 7, 8, 20, 41, 64} {
		d, src, r := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range n {
			d[i], src[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			r[i] = max(float32(rng.NormFloat64()), 0)
		}
		r[0], src[n-1] = float32(math.NaN()), float32(math.Copysign(0, -1))
		if n > 2 {
			r[1] = float32(math.Copysign(0, -1))
		}
		wantAdd, wantRelu := slices.Clone(d), slices.Clone(d)
		for i := range n {
			wantAdd[i] += src[i]
			if !(r[i] > 0) {
				wantRelu[i] = 0
			}
		}
		gotAdd, gotRelu := slices.Clone(d), slices.Clone(d)
		addTo(gotAdd, src)
		reluGradInPlace(gotRelu, r)
		for i := range n {
			if math.Float32bits(gotAdd[i]) != math.Float32bits(wantAdd[i]) || math.Float32bits(gotRelu[i]) != math.Float32bits(wantRelu[i]) {
				t.Fatalf("n %d [%d]: add %v relu %v, loops %v %v", n, i, gotAdd[i], gotRelu[i], wantAdd[i], wantRelu[i])
			}
		}
	}
}
