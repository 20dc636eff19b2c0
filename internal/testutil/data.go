package testutil

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"
)

// EnvData is the variable naming the folder that holds mnist/ and
// fashion-mnist/ (data.EnvData; spelled out here because data's own tests
// import this package).
const EnvData = "GOVAE_DATA"

var dataSkips atomic.Int64

// SkipWithoutData skips t, counting it for RunMain's note, when
// $GOVAE_DATA is unset; else it returns the folder it names.
func SkipWithoutData(t testing.TB) string {
	t.Helper()
	root := os.Getenv(EnvData)
	if root == "" {
		dataSkips.Add(1)
		t.Skip(EnvData + " is not set: point it at the folder holding mnist/ and fashion-mnist/ to run this test on real images")
	}
	return root
}

// SkipNoData skips t with msg, counting it for RunMain's note: for a test
// that found no real images where $GOVAE_DATA (or its default) points.
func SkipNoData(t testing.TB, msg string) {
	t.Helper()
	dataSkips.Add(1)
	t.Skip(msg)
}

// RunMain runs the tests of a package that has tests needing real images
// (call it from TestMain: os.Exit(testutil.RunMain(m))), then, if some were
// skipped for want of them, prints one line saying how many and naming
// GOVAE_DATA. `go test ./...` shows nothing a passing package prints (its
// summary is the "ok" line alone), so the line also goes to the terminal
// (/dev/tty) when there is one; with -v, or a single package, it appears
// in the output.
func RunMain(m *testing.M) int {
	code := m.Run()
	if n := dataSkips.Load(); n > 0 {
		line := DataNote(n)
		fmt.Fprintln(os.Stderr, line)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			writeLine(tty, line)
			tty.Close()
		}
	}
	return code
}

// DataNote is RunMain's line for n skipped tests.
func DataNote(n int64) string {
	tests := "tests"
	if n == 1 {
		tests = "test"
	}
	wd, _ := os.Getwd()
	return fmt.Sprintf("%d %s skipped in %s: set %s to the folder holding mnist/ and fashion-mnist/ to run them", n, tests, wd, EnvData)
}

func writeLine(w io.Writer, line string) { fmt.Fprintln(w, line) }
