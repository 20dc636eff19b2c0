// Command train trains a variational autoencoder on MNIST-format images.
//
//	go run ./cmd/train                      # the reference model on MNIST, into runs/mnist
//	go run ./cmd/train -dataset fashion-mnist -latent 32 -epochs 50 -out runs/fmnist
//	go run ./cmd/train -resume -out runs/mnist -epochs 20
//
// It writes model.safetensors (resumable), best.safetensors, metrics.jsonl and
// per-epoch PNG grids into -out. Ctrl-C or SIGTERM saves a resumable
// checkpoint and exits 0. Exit status: 0 done or interrupted, 1 failure,
// 2 bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/trainrun"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = trainrun.Train(ctx, cfg)
	var ue *trainrun.UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, trainrun.ErrInterrupted):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "train:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "train:", err)
		return 1
	}
}

func parseFlags(args []string) (trainrun.Config, error) {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	ref := amortized.ReferenceConfig()
	var (
		cfg       trainrun.Config
		hidden    = fs.String("hidden", "400", "encoder hidden widths, comma-separated (the decoder mirrors them); empty for none")
		decHidden = fs.String("decoder-hidden", "", "decoder hidden widths if not the mirror of -hidden")
		seed      = fs.Uint64("seed", 1, "seed of every random draw: initialization, data order, binarization, noise")
	)
	fs.StringVar(&cfg.Dataset, "dataset", "mnist", "dataset name: mnist, fashion-mnist, or any name with -data-dir")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "folder with the four IDX files (searched before $GOVAE_DATA, the user cache and /usr/share/datasets)")
	fs.BoolVar(&cfg.Offline, "offline", false, "never download a missing dataset")
	fs.StringVar(&cfg.Binarize, "binarize", "", "none, static or dynamic (default dynamic for bernoulli, none for gaussian)")
	fs.StringVar(&cfg.Model.Likelihood, "likelihood", "bernoulli", "p(x|z): bernoulli or gaussian")
	fs.IntVar(&cfg.Model.Latent, "latent", ref.Latent, "latent dimension")
	fs.StringVar(&cfg.Model.Activation, "activation", "relu", "hidden activation: relu, tanh or softplus")
	fs.StringVar(&cfg.Model.Posterior, "posterior", "diag", "q(z|x) family: diag")
	fs.StringVar(&cfg.Model.Dtype, "dtype", "float32", "float32 or float64")
	fs.IntVar(&cfg.Train.Epochs, "epochs", 10, "epochs to train (with -resume: the total to reach)")
	fs.IntVar(&cfg.Batch, "batch", 128, "minibatch size")
	fs.Float64Var(&cfg.Train.LR, "lr", 1e-3, "Adam learning rate")
	fs.Float64Var(&cfg.Train.WarmupEpochs, "warmup", 0, "epochs over which the KL weight rises from 0 to 1 (0: no warm-up)")
	fs.Float64Var(&cfg.Train.FreeBits, "free-bits", 0, "per-dimension KL floor in nats (0: none)")
	fs.IntVar(&cfg.ValSize, "val", -1, "training images held out for validation (-1: 10%, at most 10000; 0: none)")
	fs.StringVar(&cfg.Out, "out", "runs/mnist", "run directory")
	fs.BoolVar(&cfg.Resume, "resume", false, "continue the run in -out")
	fs.BoolVar(&cfg.Force, "force", false, "start over even if -out holds a run")
	fs.IntVar(&cfg.LogEvery, "log-every", 0, "print a line every N steps (0: per epoch only)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	cfg.Seed, cfg.Train.Seed = *seed, *seed
	cfg.Explicit = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.Explicit[f.Name] = true })

	var err error
	if cfg.Model.Hidden, err = parseWidths("hidden", *hidden); err != nil {
		return cfg, err
	}
	if cfg.Explicit["decoder-hidden"] {
		if cfg.Model.DecoderHidden, err = parseWidths("decoder-hidden", *decHidden); err != nil {
			return cfg, err
		}
	}
	switch {
	case cfg.Model.Latent < 1:
		return cfg, fmt.Errorf("-latent %d: want >= 1", cfg.Model.Latent)
	case cfg.Train.Epochs < 1:
		return cfg, fmt.Errorf("-epochs %d: want >= 1", cfg.Train.Epochs)
	case cfg.Batch < 1:
		return cfg, fmt.Errorf("-batch %d: want >= 1", cfg.Batch)
	case !(cfg.Train.LR > 0):
		return cfg, fmt.Errorf("-lr %g: want > 0", cfg.Train.LR)
	case !(cfg.Train.WarmupEpochs >= 0):
		return cfg, fmt.Errorf("-warmup %g: want >= 0", cfg.Train.WarmupEpochs)
	case !(cfg.Train.FreeBits >= 0):
		return cfg, fmt.Errorf("-free-bits %g: want >= 0", cfg.Train.FreeBits)
	case cfg.ValSize < -1:
		return cfg, fmt.Errorf("-val %d: want -1 (default), 0 (none) or a count", cfg.ValSize)
	case cfg.LogEvery < 0:
		return cfg, fmt.Errorf("-log-every %d: want >= 0", cfg.LogEvery)
	}
	if _, err := (amortized.Config{DataDim: 1, Hidden: cfg.Model.Hidden, DecoderHidden: cfg.Model.DecoderHidden,
		Latent: cfg.Model.Latent, Activation: cfg.Model.Activation, Likelihood: cfg.Model.Likelihood,
		Posterior: cfg.Model.Posterior, Dtype: cfg.Model.Dtype}).Normalize(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func parseWidths(name, s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return []int{}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s %q: want positive integers separated by commas, such as 400 or 512,256", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}
