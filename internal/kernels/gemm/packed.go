package gemm

// PackedB is a k×n row-major matrix B packed once, for many products
// A B with the same B (SgemmEpilogue's): the weights of a layer through
// which many chunks of rows pass while the weights stay fixed (log p(x) by
// importance sampling). Packing B costs a pass over it, as much as 5% of
// such a product. A PackedB is read-only and may be used by several
// goroutines at once; B must not change while it is in use.
type PackedB struct {
	kern *kernel
	k, n int
	b    []float32 // B itself, for a kernel other than the one packed for
	// data holds B's k blocks one after another, block pc at pc*nPad, in
	// nr-column micro-panels (the parallel driver's shared layout, see
	// compute).
	data []float32
	nPad int
}

// PackB packs the k×n row-major matrix b (ldb n).
func PackB(k, n int, b []float32) *PackedB {
	switch {
	case k < 0:
		panic(kLT0)
	case n < 0:
		panic(nLT0)
	case len(b) < k*n:
		panic(shortB)
	}
	pb := &PackedB{kern: active.Load(), k: k, n: n, b: b}
	if k == 0 || n == 0 {
		return pb
	}
	var p problem
	p.init(pb.kern, false, false, 1, n, k, 1, nil, k, b, n, 0, nil, n)
	pb.nPad = p.nPad
	pb.data = aligned(p.nPad * k)
	for pc := 0; pc < k; pc += p.kc {
		p.packB(pb.data[pc*p.nPad:], 0, n, pc, min(p.kc, k-pc))
	}
	return pb
}

// SgemmEpilogue is SgemmEpilogue(m, n, k, a, B, c, epi) for the packed
// B, with the same values of C and the same guarantees on the blocks
// handed to epi. Each block of A is packed once (SgemmEpilogue packs it
// again for every block of columns of C).
func (pb *PackedB) SgemmEpilogue(m int, a, c []float32, epi func(i0, i1, j0, j1 int)) {
	k, n := pb.k, pb.n
	kern := active.Load()
	if pb.data == nil || kern != pb.kern {
		SgemmEpilogue(m, n, k, a, pb.b, c, epi)
		return
	}
	switch {
	case m < 0:
		panic(mLT0)
	case len(a) < m*k:
		panic(shortA)
	case len(c) < m*n:
		panic(shortC)
	}
	if m == 0 {
		return
	}
	var p problem
	p.init(kern, false, false, m, n, k, 1, a, k, pb.b, n, 0, c, n)
	p.epi = epi
	ws := wsPool.Get().(*workspace)
	p.computeRowsOuter(ws, pb.data)
	wsPool.Put(ws)
}

// computeRowsOuter is compute over all of C with all of B packed in bp
// (the layout of compute's sharedB), with the rows outermost: each block
// of A is packed once and multiplied by every block of B. Every element of
// C gets the same sums in the same order as in compute; the epilogue's
// blocks are compute's, in a different order (a row's still in increasing
// j).
func (p *problem) computeRowsOuter(ws *workspace, bp []float32) {
	kc, mc, nc := p.kc, p.mc, p.nc
	ws.a = grow(ws.a, min(mc, p.mPad)*kc)
	for ic := 0; ic < p.m; ic += mc {
		mb := min(mc, p.m-ic)
		for pc := 0; pc < p.k; pc += kc {
			kb := min(kc, p.k-pc)
			mode := modeAdd
			if pc == 0 {
				mode = p.firstMode
			}
			p.packA(ws.a, ic, mb, pc, kb)
			for jc := 0; jc < p.n; jc += nc {
				nb := min(nc, p.n-jc)
				p.macro(ws, ws.a, bp[pc*p.nPad+jc*kb:], ic, mb, jc, nb, kb, mode)
				if p.epi != nil && pc+kb == p.k {
					p.epi(ic, ic+mb, jc, jc+nb)
				}
			}
		}
	}
}
