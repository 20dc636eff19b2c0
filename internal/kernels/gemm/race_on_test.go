//go:build race

package gemm

// raceEnabled: sync.Pool deliberately drops items under the race detector.
const raceEnabled = true
