//go:build !linux

package checkpoints

const oNonBlock = 0

func defaultMaxReadSize() int64 { return 16 << 30 }
