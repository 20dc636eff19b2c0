package memstat

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestParseStatus(t *testing.T) {
	status := "Name:\tgo\nVmPeak:\t 9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t4\n"
	u, err := parseStatus([]byte(status))
	if err != nil || u.RSS != 1024<<10 || u.Peak != 2048<<10 {
		t.Fatalf("got %+v, %v", u, err)
	}
	for _, bad := range []string{
		"VmRSS:\t1024 kB\n",               // no VmHWM
		"VmRSS:\t1024 MB\nVmHWM:\t1 kB\n", // unknown unit
		"VmRSS:\tlots kB\nVmHWM:\t1 kB\n",
	} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestReadSeesAllocation touches 64 MiB and expects RSS and the peak to
// show it, and ResetPeak to bring the peak back down once it is returned
// to the system.
func TestReadSeesAllocation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	before, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	const n = 64 << 20
	b := make([]byte, n)
	for i := range b {
		b[i] = 1
	}
	during, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if during.RSS < before.RSS+n/2 || during.Peak < during.RSS {
		t.Fatalf("before %+v, with 64 MiB touched %+v", before, during)
	}
	runtime.KeepAlive(b)
	b = nil
	debug.FreeOSMemory()
	if err := ResetPeak(); err != nil {
		t.Skip(err) // an older kernel or a restricted /proc
	}
	after, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if after.Peak > during.Peak-n/2 {
		t.Fatalf("peak not reset: %+v with 64 MiB touched, %+v after freeing it", during, after)
	}
}
