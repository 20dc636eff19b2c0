// Command sample draws pictures from a trained VAE checkpoint.
//
//	sample SUBCOMMAND -ckpt FILE [-data-dir DIR] -out FILE.png [flags]
//
// Subcommands:
//
//	generate     a grid of images decoded from the prior, z ~ N(0, T^2 I)
//	reconstruct  test images, each above its reconstruction
//	impute       test images with pixels hidden: rows of originals, masked and imputed images;
//	             prints the error on the hidden pixels beside a per-pixel-mean baseline
//	latent       scatter plot of posterior means of test images, coloured by label (PCA or t-SNE)
//	manifold     images decoded on a grid of latent points at normal quantiles
//	interpolate  images decoded along linear and spherical paths between test images' latents
//	curves       ELBO, reconstruction term and KL per epoch from runs' metrics.jsonl (several overlaid)
//	report       writes a run's index.html: configuration, curves, pictures, evaluation, command
//
// Examples:
//
//	go run ./cmd/sample generate -ckpt runs/mnist/best.safetensors -out samples.png -n 100 -temperature 0.8
//	go run ./cmd/sample reconstruct -ckpt runs/mnist/best.safetensors -out recon.png -n 16
//	go run ./cmd/sample impute -ckpt runs/mnist/best.safetensors -out impute.png -mask random:0.7 -method mean
//	go run ./cmd/sample latent -ckpt runs/mnist/best.safetensors -out latent.png -n 5000
//	go run ./cmd/sample latent -ckpt runs/mnist/best.safetensors -out tsne.png -n 2000 -method tsne
//	go run ./cmd/sample manifold -ckpt runs/mnist/best.safetensors -out manifold.png -size 20
//	go run ./cmd/sample interpolate -ckpt runs/mnist/best.safetensors -out path.png -from 0,2 -to 1,3
//	go run ./cmd/sample curves -metrics runs/mnist/metrics.jsonl -out curves.png
//	go run ./cmd/sample curves -metrics runs/a/metrics.jsonl,runs/b/metrics.jsonl -out compare.png
//	go run ./cmd/sample report -run runs/mnist
//
// "sample SUBCOMMAND -h" documents each subcommand's flags.
//
// A "posterior mean" is the checkpoint model's [amortized.Model.Encode]
// summary of q(z|x): the mean for Gaussian posteriors (diag, fullcov), and
// for flow posteriors (planar, radial, iaf) the flow applied to the base
// Gaussian's mean.
//
// Test images come from the dataset the checkpoint was trained on (every
// file training writes, best.safetensors included, records the dataset and
// the folder it was found in; for files of format version 1, the training
// state or model.safetensors beside it), found as
// cmd/train finds data; -dataset and -data-dir override that. They are fed
// to the model as in training's evaluation: binarized once with seed 0 for a
// Bernoulli model, grey levels for a Gaussian one or a run trained without
// binarization.
//
// Pictures of images explain themselves: a title, row labels (original /
// reconstruction, original / masked / imputed with hidden pixels in blue,
// linear / great circle), tick labels and axis titles on the manifold. Each
// shown pixel is an integer scale x scale square of exactly its value; colour
// (3-channel) models are drawn in colour.
//
// Every output is written atomically, and on any error nothing is written.
// -out is checked before any work: its folder must exist, and it may not
// name a checkpoint, a directory or any file other than a PNG picture (see
// internal/atomicfile). Sizes are bounded before anything is allocated: at
// most 10,000 images in a picture (-n, -size 100), -chains 1000, -iters
// 10000, -eval x -chains 2^20, -steps 1000; image indices are checked
// against the test set. Ctrl-C or SIGTERM stops an imputation within a
// second (it runs in slices of rows), writing nothing.
// Exit status: 0 written, 1 failure (such as a missing or foreign
// checkpoint) or interrupted, 2 bad usage (an unknown subcommand, a bad flag
// value, an image index out of range).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/report"
)

func main() {
	var stop context.CancelFunc
	ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	done := make(chan int, 1)
	go func() { done <- run(os.Args[1:], os.Stdout, os.Stderr) }()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		// Phases that do not watch ctx (loading the data, one slice of
		// rows) are not waited for beyond a moment: every picture is
		// written atomically, so exiting leaves none or a whole one.
		select {
		case code = <-done:
		case <-time.After(1500 * time.Millisecond):
			fmt.Fprintf(os.Stderr, "sample: %v\n", errInterrupted)
			code = 1
		}
	}
	stop()
	os.Exit(code)
}

// ctx is cancelled by Ctrl-C or SIGTERM: the long phases (imputation)
// check it between slices of rows and return errInterrupted, and nothing is
// written. Tests call run with the background context.
var ctx = context.Background()

var errInterrupted = errors.New("interrupted; nothing written")

// Limits on the sizes a user chooses, checked before anything is
// allocated for them: far above any useful picture, far below what would
// exhaust memory.
const (
	maxWeightDraws = 1000
	maxImages      = 10000 // images in one picture (-n of generate and reconstruct, -size squared)
	maxSize        = 100   // manifold -size: maxSize^2 = maxImages
	maxChains      = 1000  // impute -chains
	maxIters       = 10000 // impute -iters
	// maxImputeRows bounds -eval x -chains, the rows Impute holds at once.
	maxImputeRows = 1 << 20
	maxSteps      = 1000 // interpolate -steps
)

func atMost(name string, v, limit int) error {
	if v > limit {
		return usagef("-%s %d: want at most %d", name, v, limit)
	}
	return nil
}

// command is one subcommand: define registers its flags and returns the
// function to call once they are parsed.
type command struct {
	name, synopsis, doc string
	define              func(fs *flag.FlagSet) func(stdout, stderr io.Writer) error
}

var commands = []command{
	{"generate", "-ckpt FILE -out FILE.png [-n 64] [-temperature 1] [-sampler prior|gmm]",
		"Decodes n latent vectors drawn from the prior N(0, T^2 I), T = -temperature, into a grid of\nimages (the mean of p(x|z) of each). With -temperature 1 these are exactly Model.Sample's images. A model with a learned\nprior (mog:K, vamp:K) draws z ~ p(z) by Model.Sample and takes no temperature.",
		defineGenerate},
	{"reconstruct", "-ckpt FILE -out FILE.png [-first 0] [-n 16]",
		"Shows test images -first ... -first+n-1, each row of them above a row of their reconstructions\n(the mean of p(x|z) for z drawn from q(z|x), or for its mean with -mean).",
		defineReconstruct},
	{"impute", "-ckpt FILE -out FILE.png [-mask bottom] [-method sample] [-iters N]",
		"Hides part of each test image (-mask) and fills it in by iterated conditional sampling\n(Rezende, Mohamed & Wierstra 2014; amortized.Model.Impute). The picture has blocks of three\nrows: originals, masked images (hidden pixels grey) and imputed images. It prints the mean\nsquared error on the hidden pixels of -eval test images beside that of filling each hidden\npixel with its mean over the training set.",
		defineImpute},
	{"latent", "-ckpt FILE -out FILE.png [-n 5000]",
		"Plots the posterior means of n labelled test images, coloured by label. Two-dimensional\nlatents are plotted directly; higher dimensions are projected on their top two principal\ncomponents, with the share of variance each explains in the axis labels, or with -method tsne\nmapped by t-SNE, Barnes-Hut or with -theta 0 exact (seeded and reproducible; Ctrl-C stops it).",
		defineLatent},
	{"manifold", "-ckpt FILE -out FILE.png [-size 20]",
		"Decodes a size x size grid of latent points whose coordinates are the normal quantiles\nPhi^-1((i+0.5)/size): z1 grows left to right and z2 bottom to top. With more than two latent\ndimensions the grid lies in the plane of the top two principal components of the test images'\nposterior means (the other coordinates at the prior's mean, 0).",
		defineManifold},
	{"interpolate", "-ckpt FILE -out FILE.png [-from 0] [-to 1] [-steps 10]",
		"Decodes points along the path between the posterior means of test images -from and -to:\nfor each pair a row along the straight line and a row along the great circle (spherical\ninterpolation), each row between the two test images themselves.",
		defineInterpolate},
	{"curves", "-metrics FILE[,FILE...] -out FILE.png",
		"Plots the ELBO, the reconstruction term E_q[log p(x|z)] and KL(q(z|x) || p(z)) per epoch\nfrom a training run's metrics.jsonl, for the training set and the validation set (the test\nset when the run had no validation set), with per-step lines (cmd/train -log-every) as a thin\nline. Several files overlay their runs' held-out curves, with a legend of run names.",
		defineCurves},
	{"report", "-run DIR",
		"Writes DIR/index.html, a self-contained page (images inline, no script, no network) with the\nrun's configuration and data, its curves, the latest samples and reconstructions, the\nevaluation in DIR/eval.json if present (cmd/eval -json), and the command that made the run.\ncmd/train refreshes it after every epoch.",
		defineReport},
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "sample: unknown subcommand %q; want one of %s\n", args[0], commandNames())
		return 2
	}
	c := commands[i]
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sample %s %s\n\n%s\n\nflags:\n", c.name, c.synopsis, c.doc)
		fs.PrintDefaults()
	}
	do := c.define(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has printed the error and the usage
	}
	var err error
	if fs.NArg() > 0 {
		err = usagef("unexpected argument %q (flags start with -)", fs.Arg(0))
	} else {
		err = do(stdout, stderr)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "sample %s: %v\n", c.name, err)
	var ue *cli.UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: sample SUBCOMMAND -ckpt FILE [-data-dir DIR] -out FILE.png [flags]\n\nsubcommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintf(w, "\n\"sample SUBCOMMAND -h\" describes a subcommand and its flags.\n")
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// usagef is a mistake on the command line, reported with exit status 2.
var usagef = cli.Usagef

// outputFlags are the flags of every subcommand that writes a picture.
type outputFlags struct {
	out   string
	scale int
}

func (o *outputFlags) define(fs *flag.FlagSet, scale int, what string) {
	fs.StringVar(&o.out, "out", "", "the PNG file to write (required)")
	fs.IntVar(&o.scale, "scale", scale, "enlargement: "+what)
}

// maxScale bounds -scale; pictures beyond it are too large to be useful.
const maxScale = 16

func (o *outputFlags) check() error {
	if o.out == "" {
		return usagef("-out: want the PNG file to write")
	}
	if !strings.EqualFold(filepath.Ext(o.out), ".png") {
		return usagef("-out %s: want a file name ending in .png", o.out)
	}
	if err := atomicfile.CheckOutput("-out", o.out, atomicfile.PNG); err != nil {
		return cli.Usage(err)
	}
	if o.scale < 1 || o.scale > maxScale {
		return usagef("-scale %d: want 1 to %d", o.scale, maxScale)
	}
	return nil
}

// modelFlags say where the model and its test data come from.
type modelFlags struct {
	ckpt    string
	dataset string
	dataDir string
	offline bool
}

func (m *modelFlags) define(fs *flag.FlagSet, withData bool, dataUse string) {
	fs.StringVar(&m.ckpt, "ckpt", "", "the checkpoint to read (required), such as runs/mnist/best.safetensors")
	if !withData {
		return
	}
	fs.StringVar(&m.dataset, "dataset", "", dataUse+"dataset name (default: the checkpoint's training run's, else mnist)")
	fs.StringVar(&m.dataDir, "data-dir", "", dataUse+"folder with the four IDX files (default: the training run's; then $GOVAE_DATA, the user cache, /usr/share/datasets)")
	fs.BoolVar(&m.offline, "offline", false, dataUse+"never download a missing dataset")
}

func (m *modelFlags) check() error {
	if m.ckpt == "" {
		return usagef("-ckpt: want the checkpoint file to read")
	}
	return nil
}

// checkAll returns the first error of the checks.
func checkAll(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func positive(name string, v int) error {
	if v < 1 {
		return usagef("-%s %d: want >= 1", name, v)
	}
	return nil
}

func nonNegative(name string, v int) error {
	if v < 0 {
		return usagef("-%s %d: want >= 0", name, v)
	}
	return nil
}

func defineGenerate(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o generateOptions
	var s samplerFlags
	o.model.define(fs, true, "with -sampler gmm: ")
	s.define(fs)
	o.output.define(fs, 2, "each pixel becomes scale x scale pixels")
	fs.IntVar(&o.n, "n", 64, "number of images")
	fs.IntVar(&o.columns, "columns", 0, "images per grid row (0: a square grid)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the draws of z")
	fs.Float64Var(&o.temperature, "temperature", 1, "standard deviation of z as a multiple of the prior's; below 1 gives cleaner, less varied images")
	fs.IntVar(&o.weightDraws, "weight-draws", 0, "a Bayesian decoder (train -bayes-decoder): the same n z decoded with the mean weights, then under N draws of the weights from q, one row each (0: mean weights only)")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check(), positive("n", o.n), atMost("n", o.n, maxImages), nonNegative("columns", o.columns),
			nonNegative("weight-draws", o.weightDraws), atMost("weight-draws", o.weightDraws, maxWeightDraws)); err != nil {
			return err
		}
		if !(o.temperature > 0) || math.IsInf(o.temperature, 0) {
			return usagef("-temperature %g: want a finite value > 0", o.temperature)
		}
		if err := s.check(); err != nil {
			return err
		}
		if s.sampler == "gmm" {
			return generateGMM(o, s, stdout, stderr)
		}
		return generate(o, stdout)
	}
}

func defineReconstruct(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o reconstructOptions
	o.model.define(fs, true, "")
	o.output.define(fs, 2, "each pixel becomes scale x scale pixels")
	fs.IntVar(&o.first, "first", 0, "index of the first test image")
	fs.IntVar(&o.n, "n", 16, "number of test images")
	fs.IntVar(&o.columns, "columns", 8, "images per grid row")
	fs.BoolVar(&o.mean, "mean", false, "decode the mean of q(z|x) (for flow posteriors, the flow applied to the base mean) instead of a draw from it")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the draws of z")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check(), nonNegative("first", o.first), positive("n", o.n), atMost("n", o.n, maxImages), positive("columns", o.columns)); err != nil {
			return err
		}
		return reconstruct(o, stdout, stderr)
	}
}

func defineImpute(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o imputeOptions
	var mask, method string
	o.model.define(fs, true, "")
	o.output.define(fs, 2, "each pixel becomes scale x scale pixels")
	fs.StringVar(&mask, "mask", "bottom", "pixels to hide: top, bottom, left or right (half), center (a centred square of half the side), or random:F (a random fraction F of each image's pixels, 0 < F < 1)")
	fs.StringVar(&method, "method", "sample", "sample: each sweep draws z from q(z|x) (Rezende et al.); mean: each sweep uses the mean of q(z|x) (deterministic)")
	fs.IntVar(&o.iters, "iters", amortized.DefaultImputeIters, "sweeps of encode, decode, replace the hidden pixels")
	fs.IntVar(&o.chains, "chains", 1, "with -method sample: independent chains whose imputations are averaged, an estimate of E[x_hidden | x_shown] (least squared error, but blurred)")
	fs.IntVar(&o.first, "first", 0, "index of the first test image")
	fs.IntVar(&o.n, "n", 10, "number of test images in the picture")
	fs.IntVar(&o.eval, "eval", 1000, "number of test images, from -first, over which the error is measured (at least -n; the picture shows the first n)")
	fs.IntVar(&o.columns, "columns", 10, "images per grid row")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the draws of z and of random masks")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check(), nonNegative("first", o.first), positive("n", o.n),
			positive("iters", o.iters), positive("chains", o.chains), positive("columns", o.columns),
			atMost("n", o.n, maxImages), atMost("iters", o.iters, maxIters), atMost("chains", o.chains, maxChains)); err != nil {
			return err
		}
		if o.eval > maxImputeRows/o.chains {
			return usagef("-eval %d x -chains %d: %d chains of images at once, want at most %d", o.eval, o.chains, o.eval*o.chains, maxImputeRows)
		}
		if o.eval < o.n {
			return usagef("-eval %d: want at least -n (%d), the images in the picture", o.eval, o.n)
		}
		var err error
		if o.mask, err = parseMask(mask); err != nil {
			return err
		}
		switch method {
		case "sample":
		case "mean":
			o.mean = true
			if o.chains > 1 {
				return usagef("-chains %d with -method mean: the chains would be identical; want -method sample", o.chains)
			}
		default:
			return usagef("-method %q: want sample or mean", method)
		}
		return impute(o, stdout, stderr)
	}
}

func defineLatent(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o latentOptions
	o.model.define(fs, true, "")
	o.output.define(fs, 1, "the plot is drawn at 96*scale dots per inch")
	fs.IntVar(&o.n, "n", 5000, "number of test images (the first n)")
	fs.StringVar(&o.method, "method", "pca", "pca: the top two principal components (fast); tsne: t-SNE (van der Maaten & Hinton 2008)")
	fs.Float64Var(&o.perplexity, "perplexity", 30, "with -method tsne: the effective number of neighbours")
	fs.Float64Var(&o.theta, "theta", 0.5, "with -method tsne: Barnes-Hut accuracy (van der Maaten 2014), O(n log n) per step; 0: exact t-SNE, O(n²) per step")
	fs.IntVar(&o.iters, "iters", 1000, "with -method tsne: gradient steps")
	fs.Uint64Var(&o.seed, "seed", 1, "with -method tsne: seed of the initial map")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check(), positive("n", o.n), positive("iters", o.iters)); err != nil {
			return err
		}
		if o.n < 2 {
			return usagef("-n %d: want at least 2 points", o.n)
		}
		switch o.method {
		case "pca":
		case "tsne":
			if o.n > plotting.MaxTSNEPoints {
				return usagef("-n %d with -method tsne: at most %d (exact t-SNE takes n² memory and time)", o.n, plotting.MaxTSNEPoints)
			}
			if !(o.perplexity >= 1) || o.perplexity > float64(o.n-1) {
				return usagef("-perplexity %g: want 1 to %d (-n minus one)", o.perplexity, o.n-1)
			}
			if !(o.theta >= 0) || o.theta > 1 {
				return usagef("-theta %g: want 0 (exact) to 1", o.theta)
			}
		default:
			return usagef("-method %q: want pca or tsne", o.method)
		}
		return latent(o, stdout, stderr)
	}
}

func defineManifold(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o manifoldOptions
	o.model.define(fs, true, "with more than 2 latent dimensions: ")
	o.output.define(fs, 1, "each pixel becomes scale x scale pixels")
	fs.IntVar(&o.size, "size", 20, "points per side of the grid")
	fs.IntVar(&o.n, "n", 5000, "with more than 2 latent dimensions: number of test images whose posterior means give the principal plane")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check(), positive("n", o.n)); err != nil {
			return err
		}
		if o.size < 2 || o.size > maxSize {
			return usagef("-size %d: want 2 to %d (a grid of at most %d images)", o.size, maxSize, maxImages)
		}
		return manifold(o, stdout, stderr)
	}
}

func defineInterpolate(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o interpolateOptions
	var from, to string
	o.model.define(fs, true, "")
	o.output.define(fs, 2, "each pixel becomes scale x scale pixels")
	fs.StringVar(&from, "from", "0", "index of the test image at the start, or several separated by commas")
	fs.StringVar(&to, "to", "1", "index of the test image at the end, or as many as -from, separated by commas")
	fs.IntVar(&o.steps, "steps", 10, "decoded points along each path, its ends included")
	return func(stdout, stderr io.Writer) error {
		if err := checkAll(o.model.check(), o.output.check()); err != nil {
			return err
		}
		var err error
		if o.from, err = parseIndices("from", from); err != nil {
			return err
		}
		if o.to, err = parseIndices("to", to); err != nil {
			return err
		}
		if len(o.from) != len(o.to) {
			return usagef("-from has %d indices and -to %d; want one end for each start", len(o.from), len(o.to))
		}
		if o.steps < 2 || o.steps > maxSteps {
			return usagef("-steps %d: want 2 (the two ends) to %d", o.steps, maxSteps)
		}
		return interpolate(o, stdout, stderr)
	}
}

func defineCurves(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var o curvesOptions
	fs.StringVar(&o.metrics, "metrics", "", "the run's metrics.jsonl (required), or several separated by commas to overlay runs (named by their folders)")
	o.output.define(fs, 1, "the plot is drawn at 96*scale dots per inch")
	return func(stdout, _ io.Writer) error {
		if o.metrics == "" {
			return usagef("-metrics: want the metrics.jsonl file of a training run")
		}
		if err := o.output.check(); err != nil {
			return err
		}
		return curves(o, stdout)
	}
}

// parseIndices parses a comma-separated list of image indices.
func parseIndices(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 {
			return nil, usagef("-%s %q: want test image indices (integers >= 0) separated by commas", name, s)
		}
		out = append(out, i)
	}
	return out, nil
}

func defineReport(fs *flag.FlagSet) func(stdout, stderr io.Writer) error {
	var dir string
	fs.StringVar(&dir, "run", "", "the run directory (required), such as runs/mnist")
	return func(stdout, _ io.Writer) error {
		if dir == "" {
			return usagef("-run: want a run directory of cmd/train")
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return usagef("-run %s: not a directory", dir)
		}
		if err := report.Write(dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, report.IndexFile))
		return nil
	}
}
