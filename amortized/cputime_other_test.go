//go:build !linux

package amortized

import "time"

// cpuTime is 0 here (see cputime_linux_test.go).
func cpuTime() time.Duration { return 0 }
