package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/govae/govae/internal/kernels/cores"
	"gonum.org/v1/gonum/blas"
)

// Panic messages, identical to gonum.org/v1/gonum/blas/gonum.
const (
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badTranspose = "blas: illegal transpose"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

// Update modes of a micro-kernel call (see kernel_amd64.s).
const (
	modeOverwrite = 0 // C = alpha*acc (C not read: beta == 0)
	modeAdd       = 1 // C = C + alpha*acc (beta == 1, and every k block but the first)
	modeScale     = 2 // C = beta*C + alpha*acc
)

// A kernel is a register-blocked micro-kernel.
type kernel struct {
	name   string
	mr, nr int // register block: an mr×nr tile of C per call
	// fn computes the mr×nr tile c (row stride ldc) from the packed panels a
	// (kc×mr, p-major) and b (kc×nr, p-major); see kernel_amd64.s.
	fn func(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
	// fn4, if set, is fn for the first 4 rows of the tile only (the same
	// sums, about a third of the work), used for edge tiles of at most 4
	// rows.
	fn4 func(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
	// fnHalf, if set, is fn for the first nr/2 columns only, used for edge
	// tiles of at most nr/2 columns.
	fnHalf func(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
	// asmPack: use the AVX packing helpers (pack_amd64.s).
	asmPack bool
	// fnS, fn4S and fnHalfS, if set, are fn, fn4 and fnHalf reading B in
	// place, row p of the panel at b + p*ldb (see direct).
	fnS, fn4S, fnHalfS func(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)
}

// directMaxRows is the most rows of A (and C) for which a product whose B
// is not transposed reads B in place instead of packing it. Packing B
// costs a pass over it, repaid by contiguous reads in every row tile; with
// few row tiles (a training shard's 64 rows: 6) the pass costs more than
// it saves, as with the model's weights, packed anew after every step.
// Either way the sums are the same.
var directMaxRows = 128 // a variable for the tests

// Cache blocking (upper bounds; the actual block sizes are balanced so that
// the blocks along a dimension have nearly equal sizes). Tuned on the Zen 4
// (32 KiB L1d, 1 MiB L2 per core, 32 MiB L3) with TestTune.
//
// kcMax: depth of a rank-kc update. Long updates measured best: the kc×nr
// packed B micro-panel (≤ 128 KiB for the AVX-512 kernel) and the Ã
// micro-panels are streamed from L2 by the hardware prefetchers, and C and
// the packing are touched fewer times. kc also fixes the summation order,
// so it depends only on k (never on m, n or the number of goroutines).
//
// mcMax×kc: the packed block Ã of A (≤ 384 KiB), resident in L2.
//
// ncMax×kc: the packed block B̃ of B (≤ 2 MiB), resident in L2/L3.
var (
	kcMax = 1024
	mcMax = 96
	ncMax = 512
)

var (
	kernels = availableKernels() // usable kernels, fastest first
	active  atomic.Pointer[kernel]
)

func init() { active.Store(kernels[0]) }

// setKernel selects the micro-kernel used by Sgemm and returns the previous
// one. It is the internal switch that lets the tests run both the assembly and
// the pure-Go path in one process.
func setKernel(k *kernel) *kernel { return active.Swap(k) }

var maxThreads atomic.Int64

// SetMaxThreads limits the number of goroutines one Sgemm call may use to
// n (n <= 0: no limit beyond GOMAXPROCS, the default) and returns the
// previous limit. Results do not depend on it. A limit of 1 can pay off
// when other processes keep all the cores busy: a parallel call has to wait
// for a helper that the OS preempted in the middle of its chunk.
func SetMaxThreads(n int) int { return int(maxThreads.Swap(int64(max(n, 0)))) }

// SetFlushSubnormals sets whether the assembly micro-kernels flush
// subnormal numbers to zero (the default; see kernel_amd64.s) and returns
// the previous setting; for measurements and tests, not to be called while
// products run. It changes results only where an operand or a result is
// subnormal (below 1.2e-38 in absolute value), where the CPU otherwise
// spends a microcode assist per instruction. The Go kernels never flush.
func SetFlushSubnormals(on bool) bool {
	prev := flushSubnormals
	flushSubnormals = on
	return prev
}

// KernelName reports which micro-kernel Sgemm uses on this machine:
// "avx512", "avx2" or "generic".
func KernelName() string { return active.Load().name }

// Sgemm performs one of the matrix-matrix operations
//
//	C = alpha * A * B + beta * C
//	C = alpha * Aᵀ * B + beta * C
//	C = alpha * A * Bᵀ + beta * C
//	C = alpha * Aᵀ * Bᵀ + beta * C
//
// where A is an m×k or k×m dense matrix, B is an n×k or k×n dense matrix, C is
// an m×n matrix, all row-major, and alpha and beta are scalars. tA and tB
// specify whether A or B are transposed (blas.ConjTrans is the same as
// blas.Trans). If beta == 0, C is not read. The semantics, argument checks
// and panic messages are those of gonum's Implementation.Sgemm; the one
// difference is that alpha == 0 returns beta*C without reading A and B (as
// reference BLAS does), where gonum would propagate NaN/Inf from A or B.
func Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	switch tA {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	switch tB {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aTrans := tA == blas.Trans || tA == blas.ConjTrans
	if aTrans {
		if lda < max(1, m) {
			panic(badLdA)
		}
	} else {
		if lda < max(1, k) {
			panic(badLdA)
		}
	}
	bTrans := tB == blas.Trans || tB == blas.ConjTrans
	if bTrans {
		if ldb < max(1, k) {
			panic(badLdB)
		}
	} else {
		if ldb < max(1, n) {
			panic(badLdB)
		}
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if aTrans {
		if len(a) < (k-1)*lda+m {
			panic(shortA)
		}
	} else {
		if len(a) < (m-1)*lda+k {
			panic(shortA)
		}
	}
	if bTrans {
		if len(b) < (n-1)*ldb+k {
			panic(shortB)
		}
	} else {
		if len(b) < (k-1)*ldb+n {
			panic(shortB)
		}
	}
	if len(c) < (m-1)*ldc+n {
		panic(shortC)
	}

	if alpha == 0 || k == 0 {
		if beta != 1 {
			scaleC(m, n, beta, c, ldc)
		}
		return
	}
	procs := runtime.GOMAXPROCS(0)
	if t := int(maxThreads.Load()); t > 0 {
		procs = min(procs, t)
	}
	if !cores.Spare() {
		procs = 1 // the caller's own goroutines already fill the cores
	}
	var p problem
	p.init(active.Load(), aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	p.direct = !bTrans && p.kern.fnS != nil && m <= directMaxRows
	run(&p, procs)
}

// SgemmEpilogue sets C = A B for row-major A (m×k, lda k), B (k×n, ldb n)
// and C (m×n, ldc n), with the same values as Sgemm, on the calling
// goroutine, and calls epi(i0, i1, j0, j1) on each block C[i0:i1, j0:j1]
// as soon as its values are final, while it is still in cache (a block is
// at most mcMax×ncMax, about 160 KiB): a pass over C that would otherwise
// read it back from memory costs a fraction of its time. The blocks tile C
// and a row's blocks come in increasing j; j0 is a multiple of
// EpilogueAlign. epi may read and write the block's elements of C.
func SgemmEpilogue(m, n, k int, a, b, c []float32, epi func(i0, i1, j0, j1 int)) {
	switch {
	case m < 0:
		panic(mLT0)
	case n < 0:
		panic(nLT0)
	case k < 0:
		panic(kLT0)
	}
	if len(a) < m*k {
		panic(shortA)
	}
	if len(b) < k*n {
		panic(shortB)
	}
	if len(c) < m*n {
		panic(shortC)
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		epi(0, m, 0, n)
		return
	}
	var p problem
	p.init(active.Load(), false, false, m, n, k, 1, a, max(1, k), b, n, 0, c, n)
	p.epi = epi
	runSerial(&p)
}

// EpilogueAlign is the micro-kernel's column block (32 with AVX-512, 16
// with AVX2, 4 in Go): every block SgemmEpilogue hands its epilogue starts
// at a multiple of it.
func EpilogueAlign() int { return active.Load().nr }

// scaleC sets C = beta*C (C = 0 without reading it when beta == 0).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// blockSize splits total into the fewest blocks of at most maxBlock (rounded
// up to a multiple of unit) and returns the common block size, a multiple of
// unit (only the last block may be smaller).
func blockSize(total, maxBlock, unit int) int {
	nb := (total + maxBlock - 1) / maxBlock
	bs := (total + nb - 1) / nb
	return (bs + unit - 1) / unit * unit
}

// kcFor returns the depth of the rank-kc updates for a given k. It must only
// depend on k: the k blocking is the summation order of every element of C.
func kcFor(k int) int {
	nb := (k + kcMax - 1) / kcMax
	return (k + nb - 1) / nb
}

// workspace holds the packing buffers of one goroutine; reused via wsPool.
type workspace struct {
	a, b []float32        // 64-byte aligned packing buffers
	tile [12 * 32]float32 // edge tiles (≥ mr*nr of every kernel)
}

var wsPool = sync.Pool{New: func() any { return new(workspace) }}

// aligned returns a zeroed slice of length n whose first element is 64-byte
// aligned.
func aligned(n int) []float32 {
	buf := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&buf[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return buf[off : off+n : off+n]
}

func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return aligned(n)
	}
	return buf[:n]
}

// problem is one checked Sgemm call (alpha != 0, k > 0, m, n > 0) with its
// blocking.
type problem struct {
	kern           *kernel
	aTrans, bTrans bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int

	kc, mc, nc int // block sizes
	mPad, nPad int // m and n rounded up to mr and nr
	firstMode  int // update mode of the first k block
	// direct: B is read in place by the strided kernels (see directMaxRows)
	direct bool

	epi func(i0, i1, j0, j1 int) // see SgemmEpilogue; nil for Sgemm
}

func (p *problem) init(kern *kernel, aTrans, bTrans bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	*p = problem{
		kern: kern, aTrans: aTrans, bTrans: bTrans,
		m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc,
		kc:        kcFor(k),
		mc:        blockSize(m, mcMax, kern.mr),
		nc:        blockSize(n, ncMax, kern.nr),
		mPad:      (m + kern.mr - 1) / kern.mr * kern.mr,
		nPad:      (n + kern.nr - 1) / kern.nr * kern.nr,
		firstMode: modeScale,
	}
	switch beta {
	case 0:
		p.firstMode = modeOverwrite
	case 1:
		p.firstMode = modeAdd
	}
}

// packA packs A[ic:ic+mb, pc:pc+kb] into mr-row micro-panels at dst.
func (p *problem) packA(dst []float32, ic, mb, pc, kb int) {
	// A[i, p] is a[i*lda+p], or a[p*lda+i] if transposed.
	if p.aTrans {
		packCopy(dst, p.a, pc*p.lda+ic, p.lda, kb, mb, p.kern.mr, p.kern.asmPack)
	} else {
		packTrans(dst, p.a, ic*p.lda+pc, p.lda, kb, mb, p.kern.mr, p.kern.asmPack)
	}
}

// packB packs B[pc:pc+kb, jc:jc+nb] into nr-column micro-panels at dst.
func (p *problem) packB(dst []float32, jc, nb, pc, kb int) {
	// B[p, j] is b[p*ldb+j], or b[j*ldb+p] if transposed.
	if p.bTrans {
		packTrans(dst, p.b, jc*p.ldb+pc, p.ldb, kb, nb, p.kern.nr, p.kern.asmPack)
	} else {
		packCopy(dst, p.b, pc*p.ldb+jc, p.ldb, kb, nb, p.kern.nr, p.kern.asmPack)
	}
}

// compute computes the block C[i0:i1, j0:j1] (i0 a multiple of mr, j0 of nr)
// with the five-loop Goto/BLIS algorithm:
//
//	for jc in steps of nc            (columns of C and B)
//	  for pc in steps of kc          (the shared dimension)
//	    pack B[pc:pc+kc, jc:jc+nc] into kc×nr micro-panels (B̃)
//	    for ic in steps of mc        (rows of C and A)
//	      pack A[ic:ic+mc, pc:pc+kc] into mr×kc micro-panels (Ã)
//	      for jr in steps of nr      (B̃ micro-panel)
//	        for ir in steps of mr    (Ã micro-panel)
//	          micro-kernel: C[ic+ir:+mr, jc+jr:+nr] (+)= alpha·Ã_ir·B̃_jr
//
// sharedA (sharedB), if not nil, holds all of A (B) already packed by the
// parallel driver: the block for (pc, ic) starts at pc*mPad + ic*kb (for
// (pc, jc) at pc*nPad + jc*kb), and the corresponding range must then be
// the whole of m (n).
//
// If ready is not nil, the shared operand is still being packed by another
// goroutine, and ready is set when it is complete: compute packs its own
// first block of the other operand before waiting for it.
func (p *problem) compute(ws *workspace, i0, i1, j0, j1 int, sharedA, sharedB []float32, ready *atomic.Bool) {
	kc, mc, nc := p.kc, p.mc, p.nc
	if sharedA == nil {
		ws.a = grow(ws.a, min(mc, p.mPad)*kc)
	}
	if sharedB == nil {
		ws.b = grow(ws.b, min(nc, p.nPad)*kc)
	}
	for jc := j0; jc < j1; jc += nc {
		nb := min(nc, j1-jc)
		for pc := 0; pc < p.k; pc += kc {
			kb := min(kc, p.k-pc)
			mode := modeAdd
			if pc == 0 {
				mode = p.firstMode
			}
			bp := ws.b
			if sharedB != nil {
				bp = sharedB[pc*p.nPad+jc*kb:]
			} else if !p.direct {
				p.packB(bp, jc, nb, pc, kb)
			}
			for ic := i0; ic < i1; ic += mc {
				mb := min(mc, i1-ic)
				ap := ws.a
				if sharedA != nil {
					ap = sharedA[pc*p.mPad+ic*kb:]
				} else {
					p.packA(ap, ic, mb, pc, kb)
				}
				if ready != nil {
					for !ready.Load() {
						runtime.Gosched()
					}
					ready = nil
				}
				if p.direct {
					p.macroDirect(ws, ap, ic, mb, jc, nb, pc, kb, mode)
				} else {
					p.macro(ws, ap, bp, ic, mb, jc, nb, kb, mode)
				}
				if p.epi != nil && pc+kb == p.k {
					p.epi(ic, ic+mb, jc, jc+nb)
				}
			}
		}
	}
}

// macro runs the micro-kernel over the mb×nb block of C at (ic, jc) from the
// packed blocks ap (mb×kb) and bp (kb×nb).
func (p *problem) macro(ws *workspace, ap, bp []float32, ic, mb, jc, nb, kb, mode int) {
	defer flushOff(flushOn())
	p.macroTiles(ws, ap, bp, ic, mb, jc, nb, kb, mode)
}

// macroTiles is macro inside the caller's flushOn.
func (p *problem) macroTiles(ws *workspace, ap, bp []float32, ic, mb, jc, nb, kb, mode int) {
	kern := p.kern
	mr, nr := kern.mr, kern.nr
	c, ldc := p.c, p.ldc
	alpha, beta := p.alpha, p.beta
	tile := ws.tile[:mr*nr]
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		b := &bp[jr*kb]
		for ir := 0; ir < mb; ir += mr {
			mm := min(mr, mb-ir)
			a := &ap[ir*kb]
			ci := (ic+ir)*ldc + jc + jr
			if mm == mr && nn == nr {
				kern.fn(kb, a, b, &c[ci], ldc, alpha, beta, mode)
				continue
			}
			fn := kern.fn
			switch {
			case mm <= 4 && kern.fn4 != nil:
				if mm == 4 && nn == nr {
					kern.fn4(kb, a, b, &c[ci], ldc, alpha, beta, mode)
					continue
				}
				fn = kern.fn4
			case 2*nn <= nr && kern.fnHalf != nil:
				if mm == mr && 2*nn == nr {
					kern.fnHalf(kb, a, b, &c[ci], ldc, alpha, beta, mode)
					continue
				}
				fn = kern.fnHalf
			}
			// Edge tile: compute the tile (its first 4 rows with fn4, its
			// first nr/2 columns with fnHalf) into the scratch tile and
			// apply the same update to the valid part.
			fn(kb, a, b, &tile[0], nr, 1, 0, modeOverwrite)
			for i := 0; i < mm; i++ {
				updateRow(c[ci+i*ldc:ci+i*ldc+nn], tile[i*nr:i*nr+nn], alpha, beta, mode)
			}
		}
	}
}

// macroDirect is macro with B read in place (p.direct) from row pc on:
// full panels and half panels go to the strided kernels, which read
// exactly their columns; a narrower edge panel, whose full-width reads
// could run past the end of B, is packed and goes to macro. Every element
// of C gets the same FMA chain whichever kernel computes it.
func (p *problem) macroDirect(ws *workspace, ap []float32, ic, mb, jc, nb, pc, kb, mode int) {
	defer flushOff(flushOn())
	kern := p.kern
	mr, nr := kern.mr, kern.nr
	c, ldc, ldb := p.c, p.ldc, p.ldb
	alpha, beta := p.alpha, p.beta
	tile := ws.tile[:mr*nr]
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		if nn != nr && 2*nn != nr {
			p.packB(ws.b, jc+jr, nn, pc, kb)
			p.macroTiles(ws, ap, ws.b, ic, mb, jc+jr, nn, kb, mode)
			continue
		}
		b := &p.b[pc*ldb+jc+jr]
		for ir := 0; ir < mb; ir += mr {
			mm := min(mr, mb-ir)
			a := &ap[ir*kb]
			ci := (ic+ir)*ldc + jc + jr
			fn := kern.fnS
			switch {
			case 2*nn == nr: // the half kernel reads only these columns
				if mm == mr {
					kern.fnHalfS(kb, a, b, &c[ci], ldc, ldb, alpha, beta, mode)
					continue
				}
				fn = kern.fnHalfS
			case mm == mr:
				kern.fnS(kb, a, b, &c[ci], ldc, ldb, alpha, beta, mode)
				continue
			case mm <= 4:
				if mm == 4 {
					kern.fn4S(kb, a, b, &c[ci], ldc, ldb, alpha, beta, mode)
					continue
				}
				fn = kern.fn4S
			}
			fn(kb, a, b, &tile[0], nr, ldb, 1, 0, modeOverwrite)
			for i := 0; i < mm; i++ {
				updateRow(c[ci+i*ldc:ci+i*ldc+nn], tile[i*nr:i*nr+nn], alpha, beta, mode)
			}
		}
	}
}

// updateRow applies the micro-kernel update (see updateElem) to one row of
// an edge tile.
func updateRow(c, t []float32, alpha, beta float32, mode int) {
	t = t[:len(c)]
	switch {
	case mode == modeOverwrite && alpha == 1:
		copy(c, t)
	case mode == modeOverwrite:
		for j, v := range t {
			c[j] = float32(alpha * v)
		}
	case mode == modeAdd:
		for j, v := range t {
			c[j] = c[j] + float32(alpha*v)
		}
	default:
		for j, v := range t {
			c[j] = float32(beta*c[j]) + float32(alpha*v)
		}
	}
}
