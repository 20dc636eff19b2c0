// Command benchpeer measures govae against the PyTorch peer
// (../shared/bench/peer_vae_torch.py) on the same machine and data, side by
// side: it alternates the two, Reps times each, and prints every run and
// the median ratio of images per second (govae / peer).
//
//	go run ./internal/run/benchpeer                 # training, 3 alternating runs each
//	go run ./internal/run/benchpeer -mode eval      # log p(x) with k = 1000
//
// Training: both train the reference model (784-400-20-400-784, ReLU,
// Bernoulli, Adam 1e-3, batch 128) for -epochs epochs on all training
// images (govae with -val 0) and the images/s of epochs 2 to the last
// together is compared; neither side counts evaluation time. Evaluation: the peer trains one epoch
// and estimates test log p(x) with --iwae-k K on its first --iwae-n test images (1,000 by default);
// govae evaluates a 1-epoch checkpoint with cmd/eval -k K on the first -n
// test images (the cost per image does not depend on which images), and the
// ratio is of test images per second.
//
// The peer needs Debian's python3-torch; its speed depends on the BLAS
// library installed (see BENCHMARKS.md). Run on a quiet machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/govae/govae/internal/torchpeer"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "benchpeer: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	mode, data, peer, python string
	reps, epochs, k, n       int
	threads                  int
	arch                     string
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("benchpeer", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "train", "train or eval")
	fs.StringVar(&o.data, "data", "../shared/data/mnist", "dataset folder (IDX files)")
	fs.StringVar(&o.peer, "peer", "../shared/bench/peer_vae_torch.py", "the peer script")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with torch")
	fs.IntVar(&o.reps, "reps", 3, "alternating runs of each side")
	fs.IntVar(&o.epochs, "epochs", 4, "training epochs per run (all but the first are timed)")
	fs.IntVar(&o.k, "k", 1000, "eval mode: importance samples per image")
	fs.IntVar(&o.n, "n", 2000, "eval mode: test images govae evaluates")
	fs.IntVar(&o.threads, "threads", 1, "the peer's torch threads (1 is its fastest on 2 cores)")
	fs.StringVar(&o.arch, "arch", "", "cmd/train's -arch: convpeer, with -peer ../shared/bench/peer_convvae_torch.py")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.mode != "train" && o.mode != "eval" {
		return fmt.Errorf("-mode %q: want train or eval", o.mode)
	}
	if o.reps < 1 || o.epochs < 2 || o.k < 1 || o.n < 1 {
		return fmt.Errorf("-reps, -k and -n must be >= 1 and -epochs >= 2")
	}
	for _, p := range []string{o.data, o.peer} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%v", err)
		}
	}
	tmp, err := os.MkdirTemp("", "govae-benchpeer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := func(name string) string { return filepath.Join(tmp, name) }
	for _, c := range []string{"train", "eval"} {
		if out, err := exec.Command("go", "build", "-o", bin(c), "./cmd/"+c).CombinedOutput(); err != nil {
			return fmt.Errorf("building cmd/%s: %v\n%s", c, err, out)
		}
	}

	var ours, theirs []float64
	for rep := 1; rep <= o.reps; rep++ {
		p, err := o.peerRun()
		if err != nil {
			return err
		}
		g, err := o.ourRun(bin, filepath.Join(tmp, fmt.Sprintf("run%d", rep)))
		if err != nil {
			return err
		}
		theirs, ours = append(theirs, p), append(ours, g)
		fmt.Fprintf(stdout, "rep %d: govae %.0f, peer %.0f images/s, ratio %.3f\n", rep, g, p, g/p)
	}
	ratios := make([]float64, len(ours))
	for i := range ours {
		ratios[i] = ours[i] / theirs[i]
	}
	what := "training"
	if o.mode == "eval" {
		what = fmt.Sprintf("log p(x), k = %d", o.k)
	}
	fmt.Fprintf(stdout, "%s: median govae %.0f, peer %.0f images/s; median ratio %.3f (%d alternating runs each)\n",
		what, median(ours), median(theirs), median(ratios), o.reps)
	return nil
}

// peerRun returns the peer's images/s: the last epoch's in train mode, test
// images per second of its log p(x) in eval mode.
func (o options) peerRun() (float64, error) {
	args := []string{"--data", o.data, "--threads", fmt.Sprint(o.threads)} // torchpeer.Run puts the script first
	if o.mode == "train" {
		args = append(args, "--epochs", fmt.Sprint(o.epochs))
	} else {
		args = append(args, "--epochs", "1", "--iwae-k", fmt.Sprint(o.k))
	}
	res, err := torchpeer.Run(context.Background(), o.python, o.peer, args, nil)
	if err != nil {
		return 0, fmt.Errorf("peer: %w", err)
	}
	var rates []float64
	for _, e := range res.Epochs {
		rates = append(rates, e.ImagesPerSec)
	}
	if o.mode == "eval" {
		if res.LogPx == nil || res.LogPx.EvalSeconds <= 0 {
			return 0, fmt.Errorf("peer printed no log p(x) result")
		}
		return float64(res.LogPx.N) / res.LogPx.EvalSeconds, nil
	}
	if len(rates) != o.epochs {
		return 0, fmt.Errorf("peer printed %d epochs, want %d", len(rates), o.epochs)
	}
	return afterFirst(rates), nil
}

// ourRun trains with cmd/train in dir and, in eval mode, times cmd/eval on
// the result.
func (o options) ourRun(bin func(string) string, dir string) (float64, error) {
	epochs := o.epochs
	if o.mode == "eval" {
		epochs = 1
	}
	cmd := exec.Command(bin("train"), "-data-dir", o.data, "-offline", "-epochs", fmt.Sprint(epochs),
		"-val", "0", "-out", dir)
	if o.arch != "" {
		cmd.Args = append(cmd.Args, "-arch", o.arch)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("govae train: %v\n%s", err, out)
	}
	if o.mode == "eval" {
		js := filepath.Join(dir, "eval.json")
		cmd := exec.Command(bin("eval"), "-ckpt", filepath.Join(dir, "model.safetensors"), "-data-dir", o.data,
			"-offline", "-n", fmt.Sprint(o.n), "-k", fmt.Sprint(o.k), "-json", js)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("govae eval: %v\n%s", err, out)
		}
		var r struct {
			N            int     `json:"n"`
			LogPxSeconds float64 `json:"log_px_seconds"`
		}
		b, err := os.ReadFile(js)
		if err != nil {
			return 0, err
		}
		if err := json.Unmarshal(b, &r); err != nil || r.LogPxSeconds <= 0 {
			return 0, fmt.Errorf("govae eval: bad report %s: %v", js, err)
		}
		return float64(r.N) / r.LogPxSeconds, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return 0, err
	}
	var rates []float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m struct {
			ImagesPerSec float64 `json:"images_per_s"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.ImagesPerSec <= 0 {
			return 0, fmt.Errorf("govae: bad metrics line %q: %v", line, err)
		}
		rates = append(rates, m.ImagesPerSec)
	}
	if len(rates) != o.epochs {
		return 0, fmt.Errorf("govae wrote %d epochs, want %d", len(rates), o.epochs)
	}
	return afterFirst(rates), nil
}

// afterFirst is the images/s of epochs 2..E together (the harmonic mean of
// their rates: equal images per epoch): the first epoch includes start-up.
func afterFirst(rates []float64) float64 {
	var secs float64
	for _, r := range rates[1:] {
		secs += 1 / r
	}
	return float64(len(rates)-1) / secs
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
