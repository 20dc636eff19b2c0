//go:build linux

package checkpoints

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// oNonBlock makes opening a FIFO return at once instead of waiting for a
// writer; it changes nothing for a regular file.
const oNonBlock = syscall.O_NONBLOCK

func defaultMaxReadSize() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil && si.Totalram > 0 {
		return int64(uint64(si.Totalram) * uint64(si.Unit) / 2)
	}
	return 16 << 30
}
