// Command eval reports how well a trained model fits a dataset split: the
// ELBO with its reconstruction and KL terms, the importance-sampled log p(x)
// (Burda et al. 2015) with its Monte Carlo standard error (the spread a
// different -seed would give: a jackknife over -replicates groups of the k
// samples, see internal/run/evalrun), the effective sample size of the
// importance weights, and the active units.
//
//	go run ./cmd/eval -ckpt runs/mnist/best.safetensors -k 5000
//	go run ./cmd/eval -ckpt runs/mnist/model.safetensors -k 1000 -n 1000 -json eval.json
//
// The dataset defaults to the one the checkpoint was trained on. Values
// that are not finite or impossible (a Bernoulli log p(x) above 0, a
// negative closed-form KL) are an error, and no report is written. -json is
// checked before any work and never replaces a checkpoint or a file that is
// not a JSON report. Ctrl-C or SIGTERM stops within a second, writing
// nothing. Exit status: 0 done, 1 failure or interrupted, 2 bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/run/evalrun"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var cfg evalrun.Config
	fs.StringVar(&cfg.Checkpoint, "ckpt", "", "checkpoint to evaluate (required)")
	fs.StringVar(&cfg.Dataset, "dataset", "", "dataset name (default: the one the checkpoint was trained on, else mnist)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "folder with the IDX files")
	fs.BoolVar(&cfg.Offline, "offline", false, "never download a missing dataset")
	fs.StringVar(&cfg.Split, "split", "test", "test or train")
	fs.IntVar(&cfg.N, "n", 0, "evaluate the first N images (0: all)")
	fs.IntVar(&cfg.K, "k", 5000, "importance samples per image for log p(x)")
	fs.IntVar(&cfg.Replicates, "replicates", 0, "split the k samples into this many groups for the standard error of log p(x) (jackknife; 0: 10, or k if smaller)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the sampling")
	fs.IntVar(&cfg.WeightDraws, "weight-draws", 0, fmt.Sprintf("a Bayesian decoder's weight draws the ELBO and log p(x) average over (0: %d; 1 for other models)", evalrun.DefaultWeightDraws))
	fs.StringVar(&cfg.JSON, "json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "eval: unexpected argument %q (flags start with -)\n", fs.Arg(0))
		return 2
	}
	if cfg.Checkpoint == "" {
		fmt.Fprintln(os.Stderr, "eval: -ckpt: want the checkpoint to evaluate")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := evalrun.Run(ctx, cfg)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// evalrun stops its own phases promptly; loading the data does not
		// watch the context, and is not waited for. The report is written
		// atomically, so exiting leaves none or a whole one.
		select {
		case err = <-done:
		case <-time.After(1500 * time.Millisecond):
			err = evalrun.ErrInterrupted
		}
	}
	var ue *cli.UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "eval:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "eval:", err)
		return 1
	}
}
