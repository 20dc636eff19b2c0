package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *fakeClock { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func lines(buf *bytes.Buffer) []string {
	s := buf.String()
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		return []string{"unterminated: " + s}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlainLinesThrottled(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 78, "epoch 3/10", WithUnit("batches"), withClock(clk.now))
	step := func(d time.Duration, n int64) {
		clk.advance(d)
		r.Add(n)
	}
	step(time.Second, 10)   // 1s: too early
	step(5*time.Second, 10) // 6s
	if buf.Len() != 0 {
		t.Fatalf("printed before the interval: %q", buf.String())
	}
	r.SetStatus("loss 105.3")
	step(4*time.Second, 11) // 10s: first line
	step(2*time.Second, 10) // 12s: throttled
	step(7*time.Second, 10) // 19s: throttled, 9s after the last line
	step(time.Second, 10)   // 20s: second line
	step(500*time.Millisecond, 17)
	r.SetStatus("loss 98.1")
	clk.advance(time.Second)
	r.Finish()

	equalLines(t, lines(&buf), []string{
		"epoch 3/10: 39% (31/78 batches) 10.0s elapsed, 15.2s left, loss 105.3",
		"epoch 3/10: 78% (61/78 batches) 20.0s elapsed, 5.6s left, loss 105.3",
		"epoch 3/10: 100% (78/78 batches) 21.5s elapsed, loss 98.1",
	})
}

func TestWithInterval(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 100, "", WithInterval(time.Second), withClock(clk.now))
	for range 10 {
		clk.advance(300 * time.Millisecond)
		r.Add(1)
	}
	// Lines at 1.2s (4 done), 2.4s (8 done).
	equalLines(t, lines(&buf), []string{
		"4% (4/100) 1.2s elapsed, 28.8s left",
		"8% (8/100) 2.4s elapsed, 27.6s left",
	})
}

func TestFinishPrintsOnce(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 5, "eval", WithUnit("images"), withClock(clk.now))
	clk.advance(2 * time.Second)
	r.Add(5)
	r.Finish()
	clk.advance(time.Hour)
	r.Add(3)
	r.SetStatus("ignored")
	r.Finish()
	equalLines(t, lines(&buf), []string{"eval: 100% (5/5 images) 2.0s elapsed"})
}

func TestFinishEarlyKeepsRealCount(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 200, "train", withClock(clk.now))
	clk.advance(90 * time.Second)
	r.Add(199)
	buf.Reset() // drop the interval line
	r.Finish()
	equalLines(t, lines(&buf), []string{"train: 99% (199/200) 1m30s elapsed"})
}

func TestOvershootCapsPercent(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 10, "x", withClock(clk.now))
	r.Add(12)
	r.Finish()
	equalLines(t, lines(&buf), []string{"x: 100% (12/10) 0.0s elapsed"})
}

func TestUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	r := New(&buf, 0, "samples", WithUnit("images"), withClock(clk.now))
	clk.advance(12 * time.Second)
	r.Add(30)
	clk.advance(3 * time.Second)
	r.Add(15)
	r.Finish()
	equalLines(t, lines(&buf), []string{
		"samples: 30 images 12.0s elapsed, 2.5 images/s",
		"samples: 45 images 15.0s elapsed, 3.0 images/s",
	})

	// Negative totals mean unknown too, and nothing done in no time is fine.
	buf.Reset()
	New(&buf, -1, "", withClock(newClock().now)).Finish()
	equalLines(t, lines(&buf), []string{"0 0.0s elapsed"})
}

func TestBytesAndProxies(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	const size = 2_500_000
	r := New(&buf, size, "mnist", WithUnit("bytes"), withClock(clk.now))

	var dst bytes.Buffer
	src := bytes.NewReader(make([]byte, size))
	// Read through one proxy and write through the other: both count, so
	// copy half via each.
	if _, err := io.CopyN(&dst, r.ProxyReader(src), size/2); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Second)
	if _, err := io.Copy(r.Proxy(&dst), src); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != size {
		t.Fatalf("copied %d bytes", dst.Len())
	}
	r.Finish()
	equalLines(t, lines(&buf), []string{
		"mnist: 100% (2.5 MB/2.5 MB) 10.0s elapsed",
		"mnist: 100% (2.5 MB/2.5 MB) 10.0s elapsed",
	})

	buf.Reset()
	clk = newClock()
	r = New(&buf, 0, "dl", WithUnit("bytes"), withClock(clk.now))
	clk.advance(4 * time.Second)
	io.Copy(io.Discard, r.ProxyReader(bytes.NewReader(make([]byte, 6000))))
	r.Finish()
	equalLines(t, lines(&buf), []string{"dl: 6.0 kB 4.0s elapsed, 1.5 kB/s"})
}

func TestProxyCountsOnlyWrittenBytes(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, 10, "", withClock(newClock().now))
	w := r.Proxy(shortWriter{max: 3})
	if n, err := w.Write(make([]byte, 8)); n != 3 || err != io.ErrShortWrite {
		t.Fatalf("Write = %d, %v", n, err)
	}
	r.Finish()
	equalLines(t, lines(&buf), []string{"30% (3/10) 0.0s elapsed"})
}

type shortWriter struct{ max int }

func (s shortWriter) Write(b []byte) (int, error) {
	if len(b) > s.max {
		return s.max, io.ErrShortWrite
	}
	return len(b), nil
}

func TestSilent(t *testing.T) {
	var nilR *Reporter
	nilR.Add(3)
	nilR.SetStatus("x")
	nilR.Finish()
	var dst bytes.Buffer
	if w := nilR.Proxy(&dst); w != io.Writer(&dst) {
		t.Errorf("nil Proxy wrapped the writer")
	}
	src := strings.NewReader("abc")
	if rd := nilR.ProxyReader(src); rd != io.Reader(src) {
		t.Errorf("nil ProxyReader wrapped the reader")
	}

	for _, w := range []io.Writer{nil, io.Discard} {
		r := New(w, 10, "quiet", WithInterval(time.Nanosecond))
		r.Add(4)
		r.SetStatus("loss 1")
		io.Copy(r.Proxy(io.Discard), strings.NewReader("hello"))
		r.Finish()
		if r.mode != modeSilent {
			t.Errorf("New(%v) mode %v, want silent", w, r.mode)
		}
	}
}

func TestNonTerminalFileGetsLines(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := New(f, 2, "job", withClock(newClock().now))
	r.Add(2)
	r.Finish()
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "job: 100% (2/2) 0.0s elapsed\n" {
		t.Fatalf("file got %q", got)
	}
}

func TestBarMode(t *testing.T) {
	for _, unit := range []string{"", "batches", "bytes"} {
		var buf bytes.Buffer
		r := newReporter(&buf, 50, "epoch 1/2", true, WithUnit(unit))
		if r.mode != modeBar {
			t.Fatalf("mode %v, want bar", r.mode)
		}
		for range 50 {
			r.SetStatus("loss 12.5")
			r.Add(1)
		}
		r.Finish()
		out := buf.String()
		if !strings.Contains(out, "epoch 1/2, loss 12.5 100%") {
			t.Errorf("unit %q: no completed bar with status in %q", unit, out)
		}
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("unit %q: want exactly one final newline, got %q", unit, out)
		}
		r.Finish()
		if buf.String() != out {
			t.Errorf("unit %q: second Finish wrote %q", unit, buf.String()[len(out):])
		}
	}
}

func TestBarModeStoppedEarly(t *testing.T) {
	var buf bytes.Buffer
	r := newReporter(&buf, 10, "train", true)
	r.Add(3) // within the redraw throttle of the blank bar
	r.Finish()
	out := buf.String()
	if strings.Contains(out, "100%") || !strings.Contains(out, "30%") || !strings.Contains(out, "(3/10") {
		t.Errorf("early stop drawn as %q", out)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("bar line not ended: %q", out)
	}
}

func TestBarModeUnknownTotalStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	var buf bytes.Buffer
	r := newReporter(&buf, 0, "download", true, WithUnit("bytes"))
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("goroutines %d -> %d", before, n)
	}
	io.Copy(r.Proxy(io.Discard), strings.NewReader(strings.Repeat("x", 5000)))
	r.Finish()
	out := buf.String()
	if !strings.Contains(out, "download") || !strings.Contains(out, "5.0 kB") || !strings.HasSuffix(out, "\n") {
		t.Errorf("unexpected output %q", out)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 1499: "1.5 kB", 999_949: "999.9 kB",
		999_960: "1.0 MB", 11_490_000: "11.5 MB", 3_000_000_000: "3.0 GB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0.0s",
		3210 * time.Millisecond:          "3.2s",
		59_940 * time.Millisecond:        "59.9s",
		59_960 * time.Millisecond:        "1m00s",
		245 * time.Second:                "4m05s",
		time.Hour - time.Second:          "59m59s",
		time.Hour - 100*time.Millisecond: "1h00m",
		2*time.Hour + 7*time.Minute + 20*time.Second: "2h07m",
		30 * time.Hour: "30h00m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
