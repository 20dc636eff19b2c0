// Package cores coordinates nested parallelism. A caller that already runs
// one goroutine per core (data-parallel training shards, the log-likelihood
// workers) holds the cores while it does; the parallel kernels below it (the
// GEMM in internal/kernels/gemm, nets' element-wise ops) then run serially instead
// of waking helper goroutines that could only compete with the caller's own
// goroutines for the same cores. Holding never changes results: every
// kernel that consults it computes the same numbers serially and in
// parallel.
//
// [Run] runs n calls of a function concurrently on helper goroutines that
// poll for work for a while after each task instead of parking at once:
// on the 2-vCPU VM our numbers come from, waking a parked goroutine takes
// 50-100 µs, and a training step has several rounds of parallel work (the
// shards, Adam, the next batch) back to back.
package cores
