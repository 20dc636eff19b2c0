// Package torchpeer finds and runs the PyTorch peers
// (../shared/bench/peer_vae_torch.py, peer_convvae_torch.py) and reads the
// JSON lines they print: one per epoch, and with --iwae-k a last one with
// the importance-sampled test log p(x).
package torchpeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Python returns the first of $GOVAE_PYTHON, python3 and Debian's
// /usr/bin/python3 that can import module (numpy, torch), or "" when none
// can.
func Python(module string) string {
	for _, p := range []string{os.Getenv("GOVAE_PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "import "+module).Run() == nil {
			return p
		}
	}
	return ""
}

// FindScript returns the path of the peer script name (e.g.
// peer_convvae_torch.py): in $GOVAE_BENCH if set, else in shared/bench of
// the working directory or its nearest ancestor that has one (the peers
// live beside the repository and its worktrees, not in them).
func FindScript(name string) (string, error) {
	if d := os.Getenv("GOVAE_BENCH"); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$GOVAE_BENCH: %w", err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "shared", "bench", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no shared/bench/%s in the working directory or above it (set $GOVAE_BENCH to its folder)", name)
		}
		dir = up
	}
}

// Epoch is one epoch line of a peer (nats per image).
type Epoch struct {
	Epoch        int     `json:"epoch"`
	TrainSeconds float64 `json:"train_seconds"`
	ImagesPerSec float64 `json:"images_per_s"`
	TrainELBO    float64 `json:"train_elbo"`
	TestELBO     float64 `json:"test_elbo"`
}

// LogPx is the peer's last line with --iwae-k: the mean importance-sampled
// log p(x) of the first N test images with K samples.
type LogPx struct {
	LogPx       float64 `json:"test_log_px"`
	K           int     `json:"k"`
	N           int     `json:"n"`
	EvalSeconds float64 `json:"eval_seconds"`
}

// allTestImages is MNIST's test set, which a peer that prints no "n" scored.
const allTestImages = 10000

// Result is everything a peer printed.
type Result struct {
	Epochs []Epoch
	LogPx  *LogPx // nil without --iwae-k
}

// Add reads one line of the peer's output into r and reports whether it
// was one of the peer's records (other lines, such as warnings, are not).
func (r *Result) Add(line []byte) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(line, &keys) != nil {
		return false
	}
	if _, ok := keys["epoch"]; ok {
		var e Epoch
		if json.Unmarshal(line, &e) != nil {
			return false
		}
		r.Epochs = append(r.Epochs, e)
		return true
	}
	if _, ok := keys["test_log_px"]; ok {
		var l LogPx
		if json.Unmarshal(line, &l) != nil {
			return false
		}
		if _, ok := keys["n"]; !ok {
			l.N = allTestImages // peer_vae_torch.py scores the whole test set and does not say n
		}
		r.LogPx = &l
		return true
	}
	return false
}

// errNoEpochs: the peer exited cleanly without an epoch line.
var errNoEpochs = errors.New("printed no epoch line")

// Run runs python script args and reads its output; each record is passed
// to onRecord (if not nil) as it arrives. Cancelling ctx kills the peer.
func Run(ctx context.Context, python, script string, args []string, onRecord func(r *Result)) (*Result, error) {
	cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(script), err)
	}
	r := &Result{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if r.Add(sc.Bytes()) && onRecord != nil {
			onRecord(r)
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:] // the traceback's end says what failed
		}
		return nil, fmt.Errorf("%s: %w\n%s", filepath.Base(script), err, msg)
	}
	if len(r.Epochs) == 0 {
		return nil, fmt.Errorf("%s: %w", filepath.Base(script), errNoEpochs)
	}
	return r, nil
}
