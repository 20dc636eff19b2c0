// Package gemm is a fast pure-Go (no cgo) single-precision matrix multiply,
// Sgemm, with gonum's row-major BLAS semantics, and an Implementation type
// that plugs it into gorgonia and gorgonia's tensor package:
//
//	gorgonia.Use(gemm.Implementation{}) // also calls tensor.Use
//
// Everything else of Implementation (Sgemv, Sdot, the float64 and complex
// routines, ...) is gonum's.
//
// # Algorithm
//
// Sgemm follows Goto & van de Geijn, "Anatomy of high-performance matrix
// multiplication" (ACM TOMS 34(3), 2008), in the five-loop form of BLIS
// (Van Zee & van de Geijn, "BLIS: A framework for rapidly instantiating BLAS
// functionality", ACM TOMS 41(3), 2015):
//
//	for jc in steps of nc                     (columns of C and B)
//	  for pc in steps of kc                   (the shared dimension k)
//	    pack B[pc:pc+kc, jc:jc+nc] → B̃        (kc×nr micro-panels)
//	    for ic in steps of mc                 (rows of C and A)
//	      pack A[ic:ic+mc, pc:pc+kc] → Ã      (mr×kc micro-panels)
//	      for jr in steps of nr               (one B̃ micro-panel)
//	        for ir in steps of mr             (one Ã micro-panel)
//	          C[mr×nr tile] (+)= alpha · Ã_ir · B̃_jr   (micro-kernel)
//
// Packing copies each operand block into the exact order in which the
// micro-kernel reads it, so the kernel only ever does unit-stride loads
// whatever the transposition and leading dimension of A and B: the four
// transpose cases differ only in the packing routines (a strided copy, or an
// 8×8 AVX register transpose), which is why the transposed cases are as fast
// as the plain one. Packing costs O(mk + kn) memory traffic against
// O(mnk) flops. Rows and columns beyond the matrix edge are zero-padded in
// the packed panels; edge tiles are computed by the same micro-kernel into a
// scratch tile whose valid part is then added to C in Go.
//
// The micro-kernel keeps an mr×nr tile of C in registers and performs, for
// each p < kc, a rank-1 update with one row of B̃ (vector loads) and one
// column of Ã (broadcasts):
//
//   - AVX-512F: mr×nr = 12×32, 24 zmm accumulators, the A entries used
//     through embedded-broadcast VFMADD231PS (kernel_amd64.s);
//   - AVX2+FMA: 6×16, 12 ymm accumulators (the classic BLIS Haswell shape);
//   - pure Go: 4×4, used on other architectures, on amd64 CPUs without
//     AVX2+FMA, and with the purego build tag.
//
// The kernel is chosen at start-up with golang.org/x/sys/cpu (AVX-512F
// first, then AVX2+FMA, then Go).
//
// Cache blocking: the block sizes (kcMax = 1024, mcMax = 96, ncMax = 512)
// are upper bounds and are balanced so that blocks along a dimension have
// nearly equal sizes (k = 784 is one block of 784, not 512 + 272). On the
// Zen 4 this was tuned on (32 KiB L1d, 1 MiB L2 per core), a long kc
// measured best: the kc×nr B̃ micro-panel (up to 128 KiB) and the mc×kc Ã
// block (up to 384 KiB) are streamed from L2 by the hardware prefetchers
// rather than kept in L1, and a single rank-kc update per element of C
// minimises the traffic on C and the packing overhead; nc bounds the B̃
// block (≤ 2 MiB, in L3). For the model's shapes (k ≤ 784) there is a
// single k block. The k blocking is also the summation order of every
// element of C; it depends only on k.
//
// # Parallelism
//
// Problems with at least parThreshold = 2·m·n·k flops are split along n (or
// along m when m > n) into chunks of whole micro-tiles, claimed dynamically
// by the caller and up to GOMAXPROCS-1 long-lived helper goroutines. The
// operand that every chunk needs (A when splitting n) is packed once, by all
// workers together, into a shared buffer; each chunk then packs only its
// own part of the other operand. k is never split, so results are
// bit-identical for any number of goroutines (every element of C is summed
// in the same order). Steady-state calls do not allocate: packing buffers
// and task descriptors are recycled through sync.Pool and the helpers are
// reused.
//
// # Performance
//
// Measured on the 2-core AMD EPYC (Zen 4, AVX-512; peak ≈ 116 GFLOP/s per
// core, which the micro-kernels reach on L1-resident panels) with
// go test -bench Sgemm; shapes are m×k·k×n, batch 128 unless stated:
//
//	m×k×n = 128×784×400, GFLOP/s   gonum 1 core   ours 1 core   ours 2 cores
//	C = A·B (NN)                  11.5           86.8          70.6
//	C = A·Bᵀ (NT)                 12.8           88.4          68.6
//	C = Aᵀ·Bᵀ (TT)                 3.3           89.0          70.3
//
// (2026-11-22, go test -bench 'Sgemm/128x784x400/', with other jobs on the
// cores: the two-core column was measured on a busy machine and is below
// the one-core one there; the split threshold needs a quiet measurement.)
//
// Semantics: identical to gonum's Implementation.Sgemm, including the
// argument checks and panic messages, beta == 0 overwriting C without
// reading it, and blas.ConjTrans treated as blas.Trans; the only deviation
// is that alpha == 0 returns beta·C without reading A and B (as reference
// BLAS does), where gonum would let NaN or Inf in A or B through. Rounding
// differs from gonum's (FMA, different summation order) within normal
// float32 error.
package gemm
