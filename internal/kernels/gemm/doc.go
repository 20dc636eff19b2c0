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
// scratch tile whose valid part is then added to C in Go. An AVX-512 edge
// tile of at most 4 rows uses a 4×32 variant of the kernel, and one of at
// most 16 columns a 12×16 variant (the same sums for those elements, a
// third or a half of the work): products with 64 rows, a training shard's,
// end in a 4-row tile, which the full kernel computed as 12 (the variant
// made them 8-15% faster), and 400-wide ones in a 16-column tile.
//
// One exception to packing B, for the products of data-parallel training,
// where every step changes the weights and each shard has few rows: a
// product of at most directMaxRows (128) rows whose B is not transposed
// reads B in place, with strided variants of the AVX-512 kernels
// (kernel_strided_amd64.s, prefetching B 8 rows ahead), since a packing
// pass over a weight costs more than it saves over 6 row tiles. It changes
// no sum: each element of C gets the same FMA chain. (Packing each weight
// once per step for all shards instead, in a buffer they share, saved
// 2-3% of a step's CPU time before this and nothing after it, likely
// because the shards then read the packed weights from the shared cache
// rather than from their own L2.)
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
// are upper bounds, balanced so that the blocks along a dimension have
// nearly equal sizes (k = 1100 is two blocks of 550, not 1024 + 76). The
// textbook choice keeps the kc×nr B̃ micro-panel in L1 and the mc×kc Ã
// block in L2; on the Zen 4 this was tuned on (32 KiB L1d, 1 MiB L2 per
// core) a longer kc measured 1.5–2% faster than kc = 256 (kc = 512 and 1024
// tie; mc and nc in 48–192 and 512–1536 made no measurable difference):
// the B̃ micro-panel (≤ 128 KiB) and the Ã micro-panels are streamed from
// L2 by the hardware prefetchers, which sustain the kernel's modest
// bandwidth need (176 bytes per 24 zmm FMAs), while fewer rank-kc updates
// mean less traffic on C and fewer kernel calls. For the model's shapes
// (k ≤ 784) there is a single k block. The k blocking is also the
// summation order of every element of C, so it depends only on k.
//
// # Parallelism
//
// Products of at least parThreshold = 1.5 MFLOP (2·m·n·k) can be split
// along n (or along m when m > n) into chunks of whole micro-tiles, claimed
// dynamically by the caller and up to GOMAXPROCS-1 long-lived helper
// goroutines. The operand that every chunk needs (A when splitting n) is
// packed once by the caller into a shared buffer while the helpers wake up;
// each chunk then packs only its own part of the other operand. k is never
// split and the k blocking depends only on k, so results are bit-identical
// for any number of goroutines (every element of C is summed in the same
// order, and edge tiles finished in Go round exactly like the assembly).
//
// Waking a blocked goroutine costs 50–100 µs on this VM, as much as a
// 5–10 MFLOP product, so an idle helper spins (yielding) for 300 µs before
// blocking: the GEMMs of a training step come in quick succession and find
// it awake. With an awake helper even 2 MFLOP products run 1.2–1.6× faster
// on 2 cores; products below 16 MFLOP only go parallel when a helper is
// awake.
//
// When other processes keep the cores busy, a helper gets little CPU and
// may be preempted in the middle of its chunk, and a parallel call can be
// much slower than a serial one. Sgemm therefore times, per shape, serial
// and parallel calls (moving averages), runs the faster mode and re-probes
// the other every 32nd call; results do not depend on the choice.
// SetMaxThreads caps the goroutines per call.
//
// Steady-state calls do not allocate: packing buffers and task descriptors
// are recycled through sync.Pool and the helpers are reused.
//
// # Performance
//
// AMD EPYC (Zen 4, 2 vCPUs, AVX-512; a zmm FMA is executed as two 256-bit
// halves, so the AVX-512 and AVX2 kernels have the same peak, ≈ 116 GFLOP/s
// per core at ≈ 3.6 GHz, which both reach on L1-resident panels; AVX-512 is
// preferred, being as fast here, faster on the n = 20 layers thanks to its
// fewer edge tiles, and twice as fast on CPUs with full-width AVX-512
// units). go test -bench Sgemm, GFLOP/s, best of 19 runs taken in quiet
// moments of the shared machine (median in parentheses); shapes are m×k·k×n:
//
//	shape               op  gonum 1 core  gonum 2 cores  ours 1 core    ours 2 cores
//	fwd 128×784·784×400 NN   12.9 (12.0)   24.0 (19.8)   100.3  (97.5)  161.4 (150.5)
//	fwd 128×400·400×20  NN    7.3  (6.4)    7.2  (6.5)    52.5  (50.5)   51.1  (48.4)
//	fwd 128×20·20×400   NN   12.3 (11.4)   13.8 (11.5)    85.0  (78.2)   86.2  (80.0)
//	fwd 128×400·400×784 NN   13.1 (12.6)   24.8 (20.6)   101.2  (99.3)  176.0 (137.8)
//	dx  128×400·400×784 NT   14.5 (12.5)   27.2 (21.8)   100.9  (96.4)  171.6 (137.7)
//	dx  128×20·20×400   NT    7.1  (6.3)   10.7  (7.7)    79.5  (75.5)   77.9  (74.5)
//	dx  128×400·400×20  NT   20.4 (19.5)   20.3 (19.6)    53.1  (50.6)   52.8  (49.5)
//	dx  128×784·784×400 NT   14.9 (13.5)   26.4 (21.9)    98.7  (95.5)  160.7 (137.8)
//	dW  784×128·128×400 TN   13.1 (12.2)   24.4 (18.9)   105.6 (101.2)  175.7 (132.6)
//	dW  400×128·128×20  TN    7.4  (6.7)   11.4  (9.3)    53.9  (51.5)   54.1  (51.6)
//	dW  20×128·128×400  TN   13.1 (12.0)   16.3 (13.7)    71.2  (69.4)   71.0  (68.4)
//	dW  400×128·128×784 TN   13.3 (12.6)   24.5 (18.2)   105.8 (102.3)  172.7 (153.4)
//	fwd 500×784·784×400 NN   12.7 (11.5)   24.3 (20.5)   102.0  (98.4)  182.3 (173.2)
//	fwd 500×400·400×784 NN   12.9 (11.7)   24.1 (20.5)   105.5  (99.3)  191.0 (179.9)
//	fwd 1000×784·…×400  NN   12.8 (11.7)   23.8 (21.1)   103.8 (100.1)  185.4 (174.2)
//	fwd 1000×400·…×784  NN   12.9 (11.8)   25.1 (20.7)   104.0  (98.8)  189.5 (176.6)
//	    128×784·784×400 TT    4.1  (4.0)    8.0  (6.3)    98.2  (93.6)  158.1 (135.9)
//
// All the GEMMs of one training step of the reference model
// (BenchmarkSgemmStep, 14 products, 419 MFLOP): gonum 33.3 ms (12.6 GFLOP/s)
// on 1 core, 18.3 ms on 2; ours 4.50 ms (93 GFLOP/s, median 5.0 ms) on 1
// core, 2.73 ms (154 GFLOP/s, median 3.3 ms) on 2.
//
// The 2 MFLOP products (the 20-wide layers) stay serial in these per-shape
// benchmarks because no helper is awake between their calls; in a training
// step the large products keep the helper awake and they then go parallel
// where that measures faster. The n = 20 products
// are also limited by the 32-wide tiles (20 of 32 columns useful). When
// the other core is busy with another process, the 2-core column falls
// back to about the 1-core one. The pure-Go kernel (other architectures,
// purego) reaches ≈ 4 GFLOP/s on this amd64 (it spills
// registers here; arm64, with 32 FP registers, compiles it to 16 FMADDs and
// 8 loads per step without spills).
//
// # Semantics
//
// Identical to gonum's Implementation.Sgemm, including the argument checks
// and panic messages, beta == 0 overwriting C without reading it, and
// blas.ConjTrans treated as blas.Trans; the only deviation is that
// alpha == 0 returns beta·C without reading A and B (as reference BLAS
// does), where gonum would let NaN or Inf in A or B through. Rounding
// differs from gonum's (FMA, a different summation order) within normal
// float32 error. The assembly micro-kernels flush subnormal operands and
// results to zero (see SetFlushSubnormals): on Intel cores each subnormal
// costs a microcode assist, and IWAE's gradients reach them.
//
// SgemmEpilogue is the plain product with a callback on each block of C as
// it becomes final, for a pass over C while it is in cache (the fused
// Bernoulli log-likelihood of nets). PackB packs a B that many products
// share (a layer's weights through which log p(x) passes many chunks of
// rows) once, for PackedB.SgemmEpilogue, which also loops over the rows
// outermost so that each block of A is packed once: on log p(x)'s output
// product (500x400 times 400x784) about 10% faster than SgemmEpilogue,
// most of it from not packing B (BenchmarkPackedB).
package gemm
