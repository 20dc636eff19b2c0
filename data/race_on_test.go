//go:build race

package data

// raceEnabled: sync.Pool deliberately drops items under the race detector,
// so pooled batch jobs are sometimes allocated afresh.
const raceEnabled = true
