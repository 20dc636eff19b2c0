// Package cores coordinates nested parallelism. A caller that already runs
// one goroutine per core (data-parallel training shards, the log-likelihood
// workers) holds the cores while it does; the parallel kernels below it (the
// GEMM in internal/gemm, nets' element-wise ops) then run serially instead
// of waking helper goroutines that could only compete with the caller's own
// goroutines for the same cores. Holding never changes results: every
// kernel that consults it computes the same numbers serially and in
// parallel.
package cores
