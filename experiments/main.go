package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// experiment is one registered comparison.
type experiment struct {
	name    string
	summary string // one line, shown by -list
	// run does the work and returns the result body (Markdown, without the
	// provenance header, which the runner adds). Figures go to env.Out.
	run func(ctx context.Context, e *env) (string, error)
}

var registry = map[string]experiment{}

func register(x experiment) {
	if _, dup := registry[x.name]; dup {
		panic("experiments: " + x.name + " registered twice")
	}
	registry[x.name] = x
}

// env is what an experiment gets from the runner.
type env struct {
	Quick bool
	Out   string // directory for figures and the README, created
	Data  string // root holding mnist/ and fashion-mnist/ (may be empty)
	Seed  uint64 // base seed
	// Budget, when not 0, replaces an experiment's own wall-time budget per
	// model (for the experiments that have one).
	Budget time.Duration
	// Rows, when not empty, keeps only the row of that name, or else the rows
	// whose names contain it (burda).
	Rows string
	// Stages, when not nil, is the last stage i of the step-size schedule
	// (burda: 0.001 * 10^(-i/7) for 3^i epochs); nil: the experiment's own.
	Stages *int
	// Rev is the git revision the run was started from (gitRevision).
	Rev string
	// AnyRevision lets a run continue, or reuse, checkpoints written by
	// another revision (burda); else it refuses them.
	AnyRevision bool
	Log         io.Writer // progress lines
	// datasets records the datasets and splits the experiment used, for the header.
	datasets []string
}

// UseData notes a dataset and split for the provenance header, e.g.
// "mnist: train 10,000-image subset, test 10,000 (dynamic binarization)".
func (e *env) UseData(desc string) {
	if !slices.Contains(e.datasets, desc) {
		e.datasets = append(e.datasets, desc)
	}
}

// Logf writes a progress line.
func (e *env) Logf(format string, args ...any) { fmt.Fprintf(e.Log, format+"\n", args...) }

func main() { os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr)) }

func realMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("experiments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("run", "", "experiment to run (see -list)")
	list := fs.Bool("list", false, "list the experiments and exit")
	quick := fs.Bool("quick", false, "tiny sizes that finish in about a minute (to check the code, not the results)")
	out := fs.String("out", "", "output directory (default experiments/results/NAME; with -quick a new temporary directory, printed at the end)")
	dataDir := fs.String("data", "", "directory holding mnist/ and fashion-mnist/ (default $GOVAE_DATA, else the trainer's own search: the GoMNIST module, the user cache, ...)")
	seed := fs.Uint64("seed", 1, "base random seed")
	rows := fs.String("rows", "", "burda: run only the row of this name, or else the rows whose names contain it, e.g. \"two layers\"")
	stages := fs.Int("stages", -1, "burda: the last stage i of the paper's schedule (0.001*10^(-i/7) for 3^i epochs), 0 to 7; with it no time budget unless -budget\n(-1: the experiment's own, i = 0..5 and a budget)")
	anyRev := fs.Bool("any-revision", false, "burda: continue (or reuse) rows checkpointed in -out by another git revision, or from a tree with uncommitted changes;\nwithout it such checkpoints are refused")
	budget := fs.Duration("budget", 0, "training time per model for experiments with a time budget (burda, where it counts every process that trained a resumed row), e.g. 10m (0: the experiment's own);\nconvpeer: the whole run's (the seeds running at its end are left out)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, as in cmd/train
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "experiments: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	if *list {
		for _, n := range names {
			fmt.Fprintf(stdout, "%-14s %s\n", n, registry[n].summary)
		}
		return 0
	}
	x, ok := registry[*name]
	if !ok {
		fmt.Fprintf(stderr, "experiments: -run %q: want one of %s\n", *name, strings.Join(names, ", "))
		return 2
	}
	if *budget < 0 {
		fmt.Fprintf(stderr, "experiments: -budget %v, want a duration >= 0\n", *budget)
		return 2
	}
	if *stages < -1 || *stages > burdaLastStage {
		fmt.Fprintf(stderr, "experiments: -stages %d, want 0 to %d (the paper's schedule), or -1 for the experiment's own\n", *stages, burdaLastStage)
		return 2
	}
	// The revision is taken before the run: the tree may change while a
	// long experiment runs.
	rev := gitRevision()
	e := &env{Quick: *quick, Data: findData(*dataDir), Seed: *seed, Log: stdout, Budget: *budget, Rows: *rows, Rev: rev, AnyRevision: *anyRev}
	if *stages >= 0 {
		e.Stages = stages
	}
	dir := *out
	var err error
	switch {
	case dir != "":
	case *quick:
		if dir, err = os.MkdirTemp("", "govae-"+x.name+"-quick-"); err != nil {
			fmt.Fprintf(stderr, "experiments: %v\n", err)
			return 1
		}
	default:
		dir = filepath.Join("experiments", "results", x.name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "experiments: -out %s: %v\n", dir, err)
		return 1
	}
	e.Out = dir

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	body, err := x.run(ctx, e)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "experiments: %s interrupted; no README written\n", x.name)
		} else {
			fmt.Fprintf(stderr, "experiments: %s: %v\n", x.name, err)
		}
		return 1
	}
	readme := header(x, e, args, rev, time.Since(start)) + body
	if err := writeFileAtomic(filepath.Join(dir, "README.md"), []byte(readme)); err != nil {
		fmt.Fprintf(stderr, "experiments: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, "README.md"))
	return 0
}

// findData returns the data root: the flag, else $GOVAE_DATA, else ""
// (data.Load's own search).
func findData(flagged string) string {
	if flagged != "" {
		return flagged
	}
	return os.Getenv("GOVAE_DATA")
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; results are for everyone to read.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
