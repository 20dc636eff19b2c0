// Command train trains a variational autoencoder on MNIST-format images.
//
//	go run ./cmd/train                      # the reference model on MNIST, into runs/mnist
//	go run ./cmd/train -dataset fashion-mnist -latent 32 -epochs 50 -out runs/fmnist
//	go run ./cmd/train -resume -out runs/mnist -epochs 20
//	go run ./cmd/train -posterior iaf:4 -out runs/iaf   # q(z|x) with 4 inverse autoregressive flows
//	go run ./cmd/train -prior vamp:500 -out runs/vamp   # the VampPrior with 500 pseudo-inputs
//	go run ./cmd/train -beta 4 -out runs/beta4          # a beta-VAE (the KL weighs 4 in the loss)
//
// It writes model.safetensors (resumable), best.safetensors, metrics.jsonl,
// per-epoch PNG grids, command.txt (this command line) and index.html (the
// run's page: cmd/sample report) into -out; -save-every also saves mid-epoch, and -keep
// keeps the last few checkpoints. Ctrl-C or SIGTERM saves a resumable
// checkpoint and exits 0 (if a single step or phase is still running 1.5 s
// after the signal, it exits 1 without waiting, keeping the last save); after a crash or kill -9, -resume continues from
// the last save. A NaN stops training, or with -on-nan rollback goes back to
// the last save at half the learning rate. Exit status: 0 done or
// interrupted, 1 failure, 2 bad flags.
//
// -out is locked while training or resuming: a second trainer there fails
// at once. Any run file there (not only model.safetensors) needs -resume or
// -force; -force checks every flag and the data first, and replaces the old
// run only once the new one has saved its first checkpoint (see
// internal/run/trainrun). Sizes (-hidden, -decoder-hidden, -latent, -batch, -k,
// -k x -batch, the parameter count) are bounded before anything is
// allocated. -cpuprofile may not name a checkpoint or any file that is not
// a profile (see internal/atomicfile); the profile is written atomically.
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
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/nets"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// interruptGrace is how long a signal waits for training to stop and save.
const interruptGrace = 1500 * time.Millisecond

// cpuProfile is the -cpuprofile file ("": none).
var cpuProfile string

func run(args []string) (code int) {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		return 2
	}
	if cpuProfile != "" {
		if err := atomicfile.CheckOutput("-cpuprofile", cpuProfile, atomicfile.CPUProfile); err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			return 2
		}
		// Written beside its name and renamed once complete, so that a
		// crash leaves no half profile and an old one stays until then.
		f, err := os.CreateTemp(filepath.Dir(cpuProfile), "."+filepath.Base(cpuProfile)+".tmp-*")
		if err != nil {
			fmt.Fprintln(os.Stderr, "train: -cpuprofile:", err)
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			os.Remove(f.Name())
			fmt.Fprintln(os.Stderr, "train: -cpuprofile:", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			err := f.Sync()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(f.Name(), cpuProfile)
			}
			if err != nil {
				os.Remove(f.Name())
				fmt.Fprintln(os.Stderr, "train: -cpuprofile: the profile was not written:", err)
				if code == 0 {
					code = 1
				}
			}
		}()
	}
	cfg.Command = shellCommand(append([]string{"go", "run", "./cmd/train"}, args...)) // for the run's command.txt and report
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- trainrun.Train(ctx, cfg) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Train stops at the next step and saves; a step or a phase that
		// does not watch the context (one huge step, loading) is not
		// waited for beyond interruptGrace. Every write is atomic and the
		// run directory's lock goes with the process, so exiting here
		// leaves the last save intact and resumable.
		select {
		case err = <-done:
		case <-time.After(interruptGrace):
			// A save under way finishes first (Freeze waits for it and
			// holds back later ones): exiting in the middle of one would
			// leave its temporary file behind.
			atomicfile.Freeze()
			select {
			case err = <-done: // that save was the interruption's own, and training has returned
				if errors.Is(err, trainrun.ErrInterrupted) {
					return 0
				}
			case <-time.After(time.Second):
			}
			fmt.Fprintf(os.Stderr, "train: interrupted, but a step or phase was still running %v after the signal; stopped without saving it: the last checkpoint saved, if any, is kept in %s; continue with -resume -out %s\n",
				interruptGrace, filepath.Join(cfg.Out, trainrun.LatestFile), cfg.Out)
			return 1
		}
	}
	var ue *cli.UsageError
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
		bayesDec  = fs.Bool("bayes-decoder", false, "make the decoder's weights global latent variables: a diagonal Gaussian q per weight against\nN(0, sigma^2), trained by reparameterized weight draws with KL/N_train per image (Blundell et al. 2015)")
		decSigma  = fs.Float64("decoder-prior-sigma", 1, "with -bayes-decoder: the prior's standard deviation sigma")
		capacity  = fs.String("capacity", "", "C_max:steps:gamma: the capacity objective of Burgess et al. (2018), loss gamma |KL - C(t)| - recon,\nC rising linearly from 0 to C_max nats over steps optimizer steps (one shard)")
		every     saveEvery
		encoder   = fs.String("encoder", "", "convolutional encoder, e.g. conv:32,64/k4/s2/p1/relu/dense:256 (options after '/': kN sN pN relu|elu gated resN dense:N,...);\nempty: the MLP of -hidden")
		decoder   = fs.String("decoder", "", "convolutional decoder, e.g. deconv:64,32/k4/s2/p1/relu/dense:256 (default with -encoder: its mirror image)")
		arch      = fs.String("arch", "", "a preset architecture: convpeer (the PyTorch peer's conv VAE: -encoder "+nets.ConvPeerEncoder+"\n-decoder "+nets.ConvPeerDecoder+" -latent 32)")
		imgSize   = fs.String("image-size", "", "image folders: centre-crop and resize every image to HxW (rows x cols), e.g. 32x32; empty: the files' own size")
		channels  = fs.Int("channels", 0, "image folders: 1 (grey) or 3 (RGB); 0: from the files")
	)
	fs.StringVar(&cfg.Dataset, "dataset", "mnist", "dataset name: mnist, fashion-mnist, or any name with -data-dir")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "folder with the four IDX files, CIFAR-10's data_batch_*.bin, or PNG/JPEG images (sub-folders are classes;\ntrain/ and test/ when present) (searched before $GOVAE_DATA, the user cache and /usr/share/datasets)")
	fs.BoolVar(&cfg.Offline, "offline", false, "never download a missing dataset")
	fs.StringVar(&cfg.Binarize, "binarize", "", "none, static or dynamic (default dynamic for bernoulli, none for gaussian)")
	fs.StringVar(&cfg.Model.Likelihood, "likelihood", "bernoulli", "p(x|z): bernoulli or gaussian; for 8-bit grey levels or colours: logistic (discretized logistic),\nlogistic-mix:K (mixture of K), logistic-rgb:K (PixelCNN++'s mixture over a pixel's colour; 3 channels), categorical (256-way)")
	latent := fs.String("latent", strconv.Itoa(ref.Latent), "latent dimension; L1,L2 for two stochastic layers q(z1|x) q(z2|z1), p(z2) p(z1|z2) p(x|z1)\n(Burda et al. 2015: -latent 100,50 -hidden 100,100 -activation tanh); -prior is then p(z2): normal or vamp:K")
	latentHidden := fs.String("latent-hidden", "", "with -latent L1,L2: hidden widths of q(z2|z1), z1 side first; p(z1|z2) mirrors them\n(default two layers of L2 units, as Burda et al.)")
	fs.StringVar(&cfg.Model.Activation, "activation", "relu", "hidden activation: relu, elu, tanh or softplus")
	fs.StringVar(&cfg.Model.Posterior, "posterior", "diag", "q(z|x) family: diag (diagonal Gaussian), fullcov (full-covariance Gaussian),\nplanar:K or radial:K (K planar or radial flows with per-image parameters), iaf:K or iaf:K:H\n(K inverse autoregressive flows, MADE hidden width H, default 2*latent+1),\nhouseholder:K (K Householder reflections), sylvester:K or sylvester:K:M (orthogonal Sylvester flows, M columns, default latent),\nsylvester-householder:K:H (H reflections per step), sylvester-triangular:K,\nmixture:C (C Gaussians, stratified ELBO), aux:A or aux:A:H (auxiliary variable of width A, networks of width H, default 2*(latent+A))")
	fs.StringVar(&cfg.Model.Prior, "prior", "normal", "p(z): normal (N(0, I)), mog:K (a learned mixture of K diagonal Gaussians),\nvamp:K (the VampPrior, K learned pseudo-inputs; vamp:K:data starts them at training images)")
	fs.Float64Var(&cfg.Train.KLWeight, "beta", 1, "weight of the KL in the loss (beta-VAE, Higgins et al. 2017; times the warm-up's); reported ELBOs weigh it by 1")
	fs.StringVar(&cfg.Model.Dtype, "dtype", "float32", "float32 or float64")
	fs.IntVar(&cfg.Train.Epochs, "epochs", 10, "epochs to train (with -resume: the total to reach)")
	fs.IntVar(&cfg.Batch, "batch", 128, "minibatch size")
	fs.Float64Var(&cfg.Train.LR, "lr", 1e-3, "Adam learning rate")
	fs.Float64Var(&cfg.Train.AdamEps, "adam-eps", 1e-8, "Adam's epsilon (added to sqrt(v); the loss is the batch mean, so it acts as\nbatch x eps on a summed loss: PyTorch code that sums over the batch matches -adam-eps eps/batch)")
	fs.Float64Var(&cfg.Train.WarmupEpochs, "warmup", 0, "epochs over which the KL weight rises from 0 to 1 (0: no warm-up)")
	fs.Float64Var(&cfg.Train.FreeBits, "free-bits", 0, "per-dimension KL floor in nats (0: none)")
	fs.StringVar(&cfg.Train.Objective, "objective", "elbo", "training objective: elbo, or iwae (the importance-weighted bound of Burda et al. 2015)")
	fs.IntVar(&cfg.Train.K, "k", 1, "samples of z per image: the ELBO averages them, the IWAE bound log-averages their weights")
	fs.StringVar(&cfg.Train.Estimator, "estimator", "pathwise", "encoder gradient: pathwise (reparameterization) or score (score function with a moving-average baseline)")
	fs.IntVar(&cfg.ValSize, "val", -1, "training images held out for validation (-1: 10%, at most 10000; 0: none)")
	fs.StringVar(&cfg.Out, "out", "runs/mnist", "run directory")
	fs.BoolVar(&cfg.Resume, "resume", false, "continue the run in -out")
	fs.BoolVar(&cfg.Force, "force", false, "start over even if -out holds a run")
	fs.IntVar(&cfg.LogEvery, "log-every", 0, "print a line every N steps and add it to metrics.jsonl (\"kind\": \"step\"; 0: per epoch only)")
	fs.Var(&every, "save-every", "also save the resumable checkpoint every N steps, or every duration such as 10m (0: after each epoch only)")
	fs.IntVar(&cfg.Keep, "keep", 0, "keep the N most recent checkpoints as ckpt-stepNNNNNNNNN.safetensors besides model.safetensors and best.safetensors (0: none)")
	fs.StringVar(&cfg.OnNonFinite, "on-nan", "stop", "on a NaN or infinity: stop, or rollback to the last saved checkpoint with half the learning rate")
	fs.IntVar(&cfg.MaxRollbacks, "max-rollbacks", trainrun.DefaultMaxRollbacks, "with -on-nan rollback: give up after this many rollbacks")
	fs.IntVar(&cfg.Train.Shards, "shards", 0, "cut each batch into N shards differentiated in parallel, gradients summed (0: 2 for batches of 64 or more, else 1;\n1 with -free-bits or -estimator score); changes only the rounding, never the maths")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	// Errors are printed once, by run, without the full flag list that the
	// flag package would add; -h prints that list.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.Usage()
			return cfg, err
		}
		return cfg, fmt.Errorf("%w (train -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	cfg.Seed, cfg.Train.Seed = *seed, *seed
	cfg.SaveSteps, cfg.SaveInterval = every.steps, every.interval
	cfg.Explicit = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.Explicit[f.Name] = true })

	var err error
	if cfg.Model.Hidden, err = parseWidths("hidden", *hidden); err != nil {
		return cfg, err
	}
	switch {
	case cfg.Explicit["decoder-prior-sigma"] && !*bayesDec:
		return cfg, errors.New("-decoder-prior-sigma applies only with -bayes-decoder")
	case !(*decSigma > 0) || math.IsInf(*decSigma, 0):
		return cfg, fmt.Errorf("-decoder-prior-sigma %g: want a finite number > 0", *decSigma)
	case *bayesDec:
		cfg.Model.DecoderPriorSigma = *decSigma
	}
	if err := parseLatent(&cfg, *latent, *latentHidden); err != nil {
		return cfg, err
	}
	if err := convFlags(&cfg, *arch, *encoder, *decoder); err != nil {
		return cfg, err
	}
	if cfg.Images, err = imageFlags(*imgSize, *channels); err != nil {
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
	case cfg.Train.Shards < 0 || cfg.Train.Shards > cfg.Batch:
		return cfg, fmt.Errorf("-shards %d: want 1 to -batch (%d), or 0 for the default", cfg.Train.Shards, cfg.Batch)
	case !(cfg.Train.LR > 0) || math.IsInf(cfg.Train.LR, 0):
		return cfg, fmt.Errorf("-lr %g: want a finite number > 0", cfg.Train.LR)
	case !(cfg.Train.WarmupEpochs >= 0) || math.IsInf(cfg.Train.WarmupEpochs, 0):
		return cfg, fmt.Errorf("-warmup %g: want a finite number >= 0", cfg.Train.WarmupEpochs)
	case !(cfg.Train.KLWeight > 0) || math.IsInf(cfg.Train.KLWeight, 0):
		return cfg, fmt.Errorf("-beta %g: want a finite number > 0", cfg.Train.KLWeight)
	case !(cfg.Train.FreeBits >= 0) || math.IsInf(cfg.Train.FreeBits, 0):
		return cfg, fmt.Errorf("-free-bits %g: want a finite number >= 0", cfg.Train.FreeBits)
	case cfg.Train.Objective != amortized.ObjectiveELBO && cfg.Train.Objective != amortized.ObjectiveIWAE:
		return cfg, fmt.Errorf("-objective %q: want elbo or iwae", cfg.Train.Objective)
	case cfg.Train.K < 1:
		return cfg, fmt.Errorf("-k %d: want >= 1 sample per image", cfg.Train.K)
	case cfg.Train.Estimator != amortized.EstimatorPathwise && cfg.Train.Estimator != amortized.EstimatorScore:
		return cfg, fmt.Errorf("-estimator %q: want pathwise or score", cfg.Train.Estimator)
	case cfg.ValSize < -1:
		return cfg, fmt.Errorf("-val %d: want -1 (default), 0 (none) or a count", cfg.ValSize)
	case cfg.LogEvery < 0:
		return cfg, fmt.Errorf("-log-every %d: want >= 0", cfg.LogEvery)
	case cfg.Keep < 0:
		return cfg, fmt.Errorf("-keep %d: want >= 0", cfg.Keep)
	case cfg.OnNonFinite != "stop" && cfg.OnNonFinite != "rollback":
		return cfg, fmt.Errorf("-on-nan %q: want stop or rollback", cfg.OnNonFinite)
	case cfg.MaxRollbacks < 1:
		return cfg, fmt.Errorf("-max-rollbacks %d: want >= 1", cfg.MaxRollbacks)
	case cfg.Explicit["max-rollbacks"] && cfg.OnNonFinite != "rollback":
		return cfg, errors.New("-max-rollbacks applies only with -on-nan rollback")
	}
	if *capacity != "" {
		if err := parseCapacity(*capacity, &cfg.Train); err != nil {
			return cfg, err
		}
	}
	if _, err := cfg.Train.Normalize(); err != nil {
		return cfg, fmt.Errorf("-objective %s -k %d -estimator %s -warmup %g -beta %g -capacity %q -free-bits %g -shards %d: %w",
			cfg.Train.Objective, cfg.Train.K, cfg.Train.Estimator, cfg.Train.WarmupEpochs, cfg.Train.KLWeight, *capacity, cfg.Train.FreeBits, cfg.Train.Shards, err)
	}
	if cfg.Binarize != "" {
		if _, err := data.ParseBinarization(cfg.Binarize); err != nil {
			return cfg, fmt.Errorf("-binarize: %w", err)
		}
	}
	if prior, _ := amortized.SplitPart(cfg.Model.Prior); prior != "twolayer" { // twolayer's posterior is checked with its prior
		if _, err := amortized.CanonicalPosterior(cfg.Model.Posterior, cfg.Model.Latent); err != nil {
			return cfg, fmt.Errorf("-posterior: %w", err)
		}
	}
	// The trunk needs the image shape: trainrun checks it once the data are loaded.
	pre := amortized.Config{DataDim: 1}
	if name, _ := amortized.SplitPart(cfg.Model.Likelihood); name == amortized.LogisticRGB {
		pre = amortized.Config{DataDim: 3, ImageRows: 1, ImageCols: 1, ImageChannels: 3} // it needs colour
	}
	mc, err := (amortized.Config{DataDim: pre.DataDim, ImageRows: pre.ImageRows, ImageCols: pre.ImageCols, ImageChannels: pre.ImageChannels, Hidden: cfg.Model.Hidden, DecoderHidden: cfg.Model.DecoderHidden,
		Latent: cfg.Model.Latent, Activation: cfg.Model.Activation, Likelihood: cfg.Model.Likelihood,
		Posterior: cfg.Model.Posterior, Prior: cfg.Model.Prior, Dtype: cfg.Model.Dtype, DecoderPriorSigma: cfg.Model.DecoderPriorSigma}).Normalize()
	if err != nil {
		return cfg, err
	}
	if err := trainrun.CheckSizes(mc, cfg.Batch, cfg.Train.K); err != nil {
		return cfg, err
	}
	if !cfg.Resume { // a resumed run keeps its saved posterior and options
		if _, err := cfg.Train.NormalizeFor(mc); err != nil {
			return cfg, fmt.Errorf("-posterior %s with -free-bits %g -estimator %s: %w", mc.Posterior, cfg.Train.FreeBits, cfg.Train.Estimator, err)
		}
	}
	return cfg, nil
}

// parseCapacity reads -capacity C_max:steps:gamma into o.
func parseCapacity(s string, o *amortized.TrainOptions) error {
	f := strings.Split(s, ":")
	bad := func(why string) error {
		return fmt.Errorf("-capacity %q: %s; want C_max:steps:gamma, such as 25:100000:1000 (C_max nats >= 0, steps >= 1, gamma > 0)", s, why)
	}
	if len(f) != 3 {
		return bad(fmt.Sprintf("%d parts", len(f)))
	}
	c, err := strconv.ParseFloat(f[0], 64)
	if err != nil || !(c >= 0) || math.IsInf(c, 0) {
		return bad(fmt.Sprintf("C_max %q is not a finite number >= 0", f[0]))
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 1 {
		return bad(fmt.Sprintf("steps %q is not an integer >= 1", f[1]))
	}
	g, err := strconv.ParseFloat(f[2], 64)
	if err != nil || !(g > 0) || math.IsInf(g, 0) {
		return bad(fmt.Sprintf("gamma %q is not a finite number > 0", f[2]))
	}
	o.CapacityMax, o.CapacitySteps, o.CapacityGamma = c, n, g
	return nil
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

// parseLatent sets the model's latent size from -latent: L, or L1,L2 for
// two stochastic layers (the twolayer posterior and prior of amortized,
// each layer a diagonal Gaussian, so -posterior must stay diag).
func parseLatent(cfg *trainrun.Config, latent, hidden string) error {
	f := strings.Split(latent, ",")
	sizes := make([]int, len(f))
	for i, v := range f {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("-latent %q: want a positive integer, or L1,L2 for two stochastic layers", latent)
		}
		if n < 1 {
			return fmt.Errorf("-latent %s: want >= 1", latent)
		}
		sizes[i] = n
	}
	switch {
	case len(sizes) == 1:
		cfg.Model.Latent = sizes[0]
		if cfg.Explicit["latent-hidden"] {
			return errors.New("-latent-hidden applies only to two stochastic layers (-latent L1,L2)")
		}
		return nil
	case len(sizes) > 2:
		return fmt.Errorf("-latent %s: at most two stochastic layers (L1,L2)", latent)
	case cfg.Explicit["posterior"] && cfg.Model.Posterior != amortized.Diagonal:
		return fmt.Errorf("-latent %s (two stochastic layers) takes -posterior diag: each layer is a diagonal Gaussian", latent)
	}
	up := []int{sizes[1], sizes[1]}
	if cfg.Explicit["latent-hidden"] {
		var err error
		if up, err = parseWidths("latent-hidden", hidden); err != nil {
			return err
		}
	}
	prior := cfg.Model.Prior
	cfg.Model = amortized.TwoLayerConfig(cfg.Model, sizes[0], sizes[1], up)
	// -prior is p(z2), the top layer's prior.
	switch name, args := amortized.SplitPart(prior); {
	case !cfg.Explicit["prior"] || prior == amortized.StandardNormal:
	case name == amortized.VampPrior && len(args) == 1:
		cfg.Model.Prior += ":" + prior
	default:
		return fmt.Errorf("-prior %s with -latent %s: the top layer's prior p(z2) may be normal or vamp:K", prior, latent)
	}
	return nil
}

// saveEvery is the value of -save-every: a number of steps or a duration.
type saveEvery struct {
	steps    int64
	interval time.Duration
}

func (s *saveEvery) String() string {
	if s.interval > 0 {
		return s.interval.String()
	}
	return strconv.FormatInt(s.steps, 10)
}

func (s *saveEvery) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		*s = saveEvery{steps: n}
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		*s = saveEvery{interval: d}
		return nil
	}
	return errors.New("want a number of steps >= 0 or a duration such as 10m")
}

// shellCommand quotes words for a POSIX shell where they need it.
func shellCommand(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,:/+@%") == "" {
			out[i] = w
		} else {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
