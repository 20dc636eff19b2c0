package memstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Usage is a sample of the process's memory, in bytes.
type Usage struct {
	RSS  uint64 // resident set size now (VmRSS)
	Peak uint64 // highest RSS since start or the last ResetPeak (VmHWM)
}

// Read samples the memory of the calling process. It fails where
// /proc/self/status does not exist (anything but Linux).
func Read() (Usage, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Usage{}, fmt.Errorf("memstat: %w", err)
	}
	return parseStatus(b)
}

// parseStatus extracts VmRSS and VmHWM from the text of /proc/PID/status,
// whose lines read "VmRSS:\t  123456 kB".
func parseStatus(b []byte) (Usage, error) {
	var u Usage
	var haveRSS, havePeak bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "VmRSS":
			dst, haveRSS = &u.RSS, true
		case "VmHWM":
			dst, havePeak = &u.Peak, true
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return Usage{}, fmt.Errorf("memstat: unexpected line %q", sc.Text())
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("memstat: unexpected line %q", sc.Text())
		}
		*dst = kb << 10
	}
	if !haveRSS || !havePeak {
		return Usage{}, errors.New("memstat: /proc/self/status has no VmRSS or VmHWM line")
	}
	return u, nil
}

// ResetPeak sets Peak back to the current RSS (Linux 4.0 and later), so
// that a benchmark measures its own peak and not that of earlier work in
// the same process.
func ResetPeak() error {
	// "5" resets the peak RSS; see proc(5), /proc/pid/clear_refs.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("memstat: resetting the peak: %w", err)
	}
	return nil
}
