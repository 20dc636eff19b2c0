package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultInterval is the minimum time between plain progress lines.
const DefaultInterval = 10 * time.Second

// barThrottle limits terminal redraws; per-batch redraws would cost more
// than small batches do.
const barThrottle = 100 * time.Millisecond

// An Option configures a Reporter.
type Option func(*config)

type config struct {
	interval time.Duration
	unit     string
	now      func() time.Time
}

// WithInterval sets the minimum time between plain lines. Non-positive
// values keep DefaultInterval. It has no effect on a terminal bar.
func WithInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.interval = d
		}
	}
}

// WithUnit names what is counted, such as "batches" or "images". The unit
// "bytes" is special: counts are shown as human-readable sizes (SI units, as
// the bar uses) and the bar shows a transfer rate.
func WithUnit(name string) Option {
	return func(c *config) { c.unit = name }
}

// withClock replaces time.Now for plain lines, for tests.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

type mode int

const (
	modeSilent mode = iota
	modeLines
	modeBar
)

// Reporter reports progress of one task. It is meant for the goroutine that
// does the work and is not safe for concurrent use. It starts no goroutines,
// so nothing outlives Finish.
//
// All methods of a nil *Reporter do nothing.
type Reporter struct {
	mode   mode
	w      io.Writer
	total  int64 // 0: unknown
	desc   string
	status string
	cfg    config

	count    int64
	start    time.Time
	lastLine time.Time
	finished bool

	pb *progressbar.ProgressBar
}

// New returns a reporter for a task of total units (total <= 0: unknown)
// writing to w. If w is a terminal it draws a bar; otherwise it prints plain
// lines such as
//
//	epoch 3/10: 39% (31/78 batches) 3.2s elapsed, 4.9s left, loss 105.3
//
// at most once per interval, from Add, plus a final line from Finish. If w is
// nil or io.Discard the reporter is silent.
func New(w io.Writer, total int64, desc string, opts ...Option) *Reporter {
	return newReporter(w, total, desc, isTerminal(w), opts...)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && f != nil && term.IsTerminal(int(f.Fd()))
}

// newReporter is New with the terminal decision made by the caller, so tests
// can draw a bar into a buffer.
func newReporter(w io.Writer, total int64, desc string, terminal bool, opts ...Option) *Reporter {
	r := &Reporter{w: w, total: max(total, 0), desc: desc, cfg: config{interval: DefaultInterval, now: time.Now}}
	for _, o := range opts {
		o(&r.cfg)
	}
	switch {
	case w == nil || w == io.Discard:
		r.mode = modeSilent
	case terminal:
		r.mode = modeBar
		r.pb = r.newBar()
	default:
		r.mode = modeLines
	}
	r.start = r.cfg.now()
	r.lastLine = r.start
	return r
}

func (r *Reporter) newBar() *progressbar.ProgressBar {
	limit := r.total
	if limit == 0 {
		limit = -1 // progressbar's spinner mode
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(r.w),
		progressbar.OptionSetDescription(r.barDescription()),
		progressbar.OptionSetWidth(30), // shrunk by progressbar to fit narrow terminals
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(barThrottle),
		// A non-zero interval makes progressbar start a goroutine that redraws
		// the spinner; it would outlive Finish by up to one tick.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetRenderBlankState(true),
		// Finish the bar's line so that later output starts on a new one.
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(r.w) }),
	}
	switch r.cfg.unit {
	case "bytes":
		opts = append(opts, progressbar.OptionShowBytes(true))
	case "":
		opts = append(opts, progressbar.OptionShowIts())
	default:
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(r.cfg.unit))
	}
	return progressbar.NewOptions64(limit, opts...)
}

// barDescription is the text before the bar.
func (r *Reporter) barDescription() string {
	if r.desc == "" || r.status == "" {
		return r.desc + r.status
	}
	return r.desc + ", " + r.status
}

// Add records n more units done. After Finish it does nothing.
func (r *Reporter) Add(n int64) {
	if r == nil || r.finished {
		return
	}
	r.count += n
	switch r.mode {
	case modeBar:
		// An error means the count passed the total; the bar then shows it
		// as complete, which is all that can be drawn.
		_ = r.pb.Add64(n)
	case modeLines:
		if now := r.cfg.now(); now.Sub(r.lastLine) >= r.cfg.interval {
			r.lastLine = now
			r.printLine(now)
		}
	}
}

// SetStatus sets short trailing text, such as the running loss, shown with
// the next update. After Finish it does nothing.
func (r *Reporter) SetStatus(s string) {
	if r == nil || r.finished || s == r.status {
		return
	}
	r.status = s
	if r.mode == modeBar {
		r.pb.Describe(r.barDescription())
	}
}

// Finish ends the report: it prints the final line, or completes the bar and
// ends its line. A task stopped before its total keeps its real count rather
// than being shown as done. Calls after the first do nothing.
func (r *Reporter) Finish() {
	if r == nil || r.finished {
		return
	}
	r.finished = true
	switch r.mode {
	case modeBar:
		if r.total > 0 && r.count < r.total {
			// The last draw may be throttled and stale: drop the throttle
			// (options are plain setters, and no other goroutine uses the
			// bar) and redraw before Exit ends the line at the real count.
			progressbar.OptionThrottle(0)(r.pb)
			_ = r.pb.Add64(0)
			_ = r.pb.Exit()
		} else {
			_ = r.pb.Finish()
		}
	case modeLines:
		r.printLine(r.cfg.now())
	}
}

// Proxy returns a writer that writes to w and adds the bytes written to r,
// for counting a download as it is saved.
func (r *Reporter) Proxy(w io.Writer) io.Writer {
	if r == nil {
		return w
	}
	return &proxyWriter{w: w, r: r}
}

// ProxyReader returns a reader that reads from rd and adds the bytes read
// to r.
func (r *Reporter) ProxyReader(rd io.Reader) io.Reader {
	if r == nil {
		return rd
	}
	return &proxyReader{rd: rd, r: r}
}

type proxyWriter struct {
	w io.Writer
	r *Reporter
}

func (p *proxyWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.r.Add(int64(n))
	return n, err
}

type proxyReader struct {
	rd io.Reader
	r  *Reporter
}

func (p *proxyReader) Read(b []byte) (int, error) {
	n, err := p.rd.Read(b)
	p.r.Add(int64(n))
	return n, err
}

// printLine writes one plain progress line. Write errors are ignored:
// progress output is advisory and must not stop the task.
func (r *Reporter) printLine(now time.Time) {
	var b strings.Builder
	if r.desc != "" {
		b.WriteString(r.desc)
		b.WriteString(": ")
	}
	elapsed := max(now.Sub(r.start), 0)
	if r.total > 0 {
		pct := min(100, r.count*100/r.total) // floored: 100% only when done
		if r.cfg.unit == "bytes" {
			fmt.Fprintf(&b, "%d%% (%s/%s) %s elapsed", pct, formatBytes(r.count), formatBytes(r.total), formatDuration(elapsed))
		} else {
			fmt.Fprintf(&b, "%d%% (%d/%d%s) %s elapsed", pct, r.count, r.total, r.unitSuffix(), formatDuration(elapsed))
		}
		if !r.finished && r.count > 0 && r.count < r.total {
			left := time.Duration(float64(elapsed) * float64(r.total-r.count) / float64(r.count))
			fmt.Fprintf(&b, ", %s left", formatDuration(left))
		}
	} else {
		if r.cfg.unit == "bytes" {
			b.WriteString(formatBytes(r.count))
		} else {
			fmt.Fprintf(&b, "%d%s", r.count, r.unitSuffix())
		}
		fmt.Fprintf(&b, " %s elapsed", formatDuration(elapsed))
		// Without a total the rate is the only hint of how long is left.
		if elapsed > 0 {
			rate := float64(r.count) / elapsed.Seconds()
			if r.cfg.unit == "bytes" {
				fmt.Fprintf(&b, ", %s/s", formatBytes(int64(rate)))
			} else {
				fmt.Fprintf(&b, ", %.1f%s/s", rate, r.unitSuffix())
			}
		}
	}
	if r.status != "" {
		b.WriteString(", ")
		b.WriteString(r.status)
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(r.w, b.String())
}

func (r *Reporter) unitSuffix() string {
	if r.cfg.unit == "" {
		return ""
	}
	return " " + r.cfg.unit
}

// formatBytes uses SI units, matching the bar.
func formatBytes(n int64) string {
	if n < 1000 && n > -1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		v /= 1000
		if v < 999.95 && v > -999.95 {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%.1f EB", v/1000)
}

// formatDuration is coarser than time.Duration.String: "3.2s", "4m05s",
// "2h07m".
func formatDuration(d time.Duration) string {
	// Thresholds sit below the unit boundary so rounding never gives "60.0s"
	// or "60m00s".
	switch {
	case d < time.Minute-50*time.Millisecond:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour-500*time.Millisecond:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
}
