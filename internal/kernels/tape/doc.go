// Package tape runs a gorgonia tape machine on the calling goroutine.
//
// gorgonia's (*tapeMachine).RunAll locks the caller to its OS thread,
// starts a goroutine that executes the program, and waits for it on a
// channel. On the 2-vCPU VM our numbers come from, that hand-off costs
// 35-45 µs per run even for a one-op graph (waking a parked thread, moving
// the processor between threads), and a training step runs one graph per
// shard, so it is paid on every step. Run calls the machine's own
// execution loop (runall, the function RunAll starts on that goroutine)
// directly, which costs under 1 µs.
//
// It reaches runall with a //go:linkname to an unexported method of the
// pinned gorgonia version (v0.9.18, see go.mod): if a gorgonia upgrade
// renames it, the build fails to link rather than misbehaving. Only machines
// built without BindDualValues may use Run: RunAll also executes queued
// gradient closures, which only dual-value machines create and Run skips
// (it cannot tell such a machine apart; the caller must not pass one). New
// refuses anything but a tape machine.
package tape
