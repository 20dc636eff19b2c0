package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govae/govae/internal/atomicfile"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// defaultClient bounds the wait for a silent server and for one whole file,
// so that a dead mirror cannot hang training forever.
var defaultClient = &http.Client{
	Timeout: 30 * time.Minute,
	Transport: func() http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = time.Minute
		return t
	}(),
}

// download fetches into dir whichever of sp's files it does not hold yet,
// trying the mirrors in order for each file.
func download(ctx context.Context, sp *spec, dir string, mirrors []string, client *http.Client, idle time.Duration, progress io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for role, base := range fileNames {
		if path, problem, err := findFile(dir, base); err != nil {
			return err
		} else if problem != "" {
			return fmt.Errorf("%s: %s", dir, problem)
		} else if path != "" {
			continue
		}
		if err := fetchFile(ctx, client, idle, mirrors, dir, base, sp.sha256[role], progress); err != nil {
			return err
		}
	}
	return nil
}

// fetchFile downloads base.gz from the first mirror that serves it with the
// right content. Every failure is reported, so that the final error says
// what each mirror did.
func fetchFile(ctx context.Context, client *http.Client, idle time.Duration, mirrors []string, dir, base, want string, progress io.Writer) error {
	var fails []string
	for k, m := range mirrors {
		u, err := url.JoinPath(m, base+".gz")
		if err == nil {
			err = fetch(ctx, client, idle, u, dir, base, want, progress)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
		} else {
			u = m
		}
		fails = append(fails, fmt.Sprintf("%s: %v", u, err))
		if progress != nil {
			next := ""
			if k+1 < len(mirrors) {
				next = "; trying the next mirror"
			}
			fmt.Fprintf(progress, "data: %s: %v%s\n", u, err, next)
		}
	}
	return fmt.Errorf("%s: no mirror served it:\n    %s", base, strings.Join(fails, "\n    "))
}

// fetch downloads u into dir and checks the SHA-256 of its decompressed
// content while it streams, so the file is only renamed into place, complete
// and verified. A mirror serving uncompressed data is accepted: the file is
// then stored without the .gz suffix.
func fetch(ctx context.Context, client *http.Client, idle time.Duration, u, dir, base, want string, progress io.Writer) (err error) {
	// A stalled server is given up after idle without data: the timer
	// cancels the request, and each read that brings bytes rewinds it.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(idle, func() { cancel(errIdle) })
	defer timer.Stop()
	defer func() {
		if err != nil && context.Cause(rctx) == errIdle {
			err = fmt.Errorf("no data for %v (idle timeout): %w", idle, errIdle)
		}
	}()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "govae-data/1")
	m := newMeter(progress, u)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}

	body := bufio.NewReaderSize(idleReader{resp.Body, timer, idle}, 64<<10)
	sig, _ := body.Peek(2)
	compressed := len(sig) == 2 && sig[0] == 0x1f && sig[1] == 0x8b
	name := base
	if compressed {
		name += ".gz"
	}
	m.start(name, resp.ContentLength)
	var size int64
	err = atomicfile.Write(filepath.Join(dir, name), 0o644, func(w io.Writer) error {
		src := io.TeeReader(body, io.MultiWriter(w, m))
		content := src
		if compressed {
			zr, err := gzip.NewReader(src)
			if err != nil {
				return bodyError(m.n, err)
			}
			content = zr // multistream: reads on to the end of the body
		}
		h := sha256.New()
		var err error
		if size, err = io.Copy(h, content); err != nil {
			return bodyError(m.n, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("checksum mismatch: SHA-256 of the %d decompressed bytes is %s, want %s", size, got, want)
		}
		return nil
	})
	m.done(err, size)
	return err
}

// errIdle is the cause of a download cancelled for lack of data.
var errIdle = errors.New("download stalled")

// DefaultIdleTimeout is how long a download may receive nothing before it
// is given up.
const DefaultIdleTimeout = 30 * time.Second

// idleReader rewinds the idle timer whenever data arrives.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// bodyError says what went wrong n bytes into a response body.
func bodyError(n int64, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("download broken off after %d bytes: %w", n, err)
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return fmt.Errorf("corrupt gzip data within %d bytes: %w", n, err)
	}
	return fmt.Errorf("reading the response after %d bytes: %w", n, err)
}

// meter shows a download's progress: a bar on a terminal, else a line at
// the start, at each quarter of a large file of known length, and at the end.
type meter struct {
	w         io.Writer
	term      bool
	bar       *progressbar.ProgressBar
	name      string
	total, n  int64
	nextShown int64
}

func newMeter(w io.Writer, u string) *meter {
	m := &meter{w: w}
	if w == nil {
		return m
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		m.term = true
		return m
	}
	fmt.Fprintf(w, "data: downloading %s\n", u)
	return m
}

// start is called once the response says how long the body is (-1 when
// it does not).
func (m *meter) start(name string, total int64) {
	m.name, m.total = name, total
	switch {
	case m.w == nil:
	case m.term:
		m.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(m.w),
			progressbar.OptionSetDescription("data: "+name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	case total >= 1<<20: // smaller files come and go too fast for it to matter
		m.nextShown = total / 4
	}
}

func (m *meter) Write(p []byte) (int, error) {
	m.n += int64(len(p))
	switch {
	case m.w == nil:
	case m.bar != nil:
		m.bar.Add(len(p))
	case m.total > 0 && m.nextShown > 0 && m.n >= m.nextShown && m.n < m.total:
		fmt.Fprintf(m.w, "data: %s: %d%% (%d of %d bytes)\n", m.name, 100*m.n/m.total, m.n, m.total)
		for m.nextShown <= m.n {
			m.nextShown += m.total / 4
		}
	}
	return len(p), nil
}

func (m *meter) done(err error, size int64) {
	if m.w == nil {
		return
	}
	if m.bar != nil {
		if err == nil {
			m.bar.Finish() // clears the bar (OptionClearOnFinish)
		} else {
			m.bar.Clear()
		}
	}
	if err == nil {
		fmt.Fprintf(m.w, "data: %s: %d bytes, %d decompressed, checksum ok\n", m.name, m.n, size)
	}
}
