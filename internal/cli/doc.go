// Package cli holds what the commands (cmd/train, cmd/eval, cmd/sample,
// cmd/inspect, experiments) share about their command lines: one
// UsageError type, so that the run packages (internal/run/trainrun,
// internal/run/evalrun) and the mains agree on which errors are the user's
// settings (exit status 2) and which are failures (exit status 1).
package cli
