// Command inspect describes a checkpoint without loading its weights: the
// model's parts (posterior, prior, likelihood, trunk, widths), its
// parameter count, the data it was trained on, how far training went, the
// best validation ELBO, whether a training state is present, the format
// version, the checksum status and the file size.
//
//	go run ./cmd/inspect runs/mnist/best.safetensors
//	go run ./cmd/inspect -json runs/mnist/model.safetensors
//
// Only the header is parsed (checkpoints.ReadInfo); the checksum is
// verified by streaming the file through SHA-256 in constant memory, which
// -no-verify skips. Exit status: 0 described (checksum verified, absent or
// not checked), 1 a file that cannot be read as a checkpoint or whose
// checksum does not match, 2 bad flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/run/runinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the description as JSON")
	noVerify := fs.Bool("no-verify", false, "do not read the whole file to verify its checksum")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: inspect [-json] [-no-verify] FILE.safetensors ...\n\nflags:\n")
		fs.PrintDefaults()
	}
	// Flags may follow the file names too (inspect FILE -json).
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "inspect:", cli.Usagef("want a checkpoint file to describe (inspect FILE [-json])"))
		return 2
	}
	status := 0
	var infos []*checkpoints.Info
	for _, path := range files {
		in, err := checkpoints.ReadInfo(path, !*noVerify)
		if err != nil {
			fmt.Fprintln(stderr, "inspect:", err)
			status = 1
			continue
		}
		if in.Checksum == checkpoints.ChecksumMismatch {
			fmt.Fprintf(stderr, "inspect: %s: the checksum does not match the content: the file is corrupt\n", path)
			status = 1
		}
		infos = append(infos, in)
		if !*asJSON {
			if len(infos) > 1 {
				fmt.Fprintln(stdout)
			}
			writeText(stdout, in)
		}
	}
	if *asJSON && len(infos) > 0 {
		var v any = infos
		if len(files) == 1 {
			v = infos[0]
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(stderr, "inspect:", err)
			return 1
		}
	}
	return status
}

// writeText prints in as aligned "key  value" lines.
func writeText(w io.Writer, in *checkpoints.Info) {
	c := in.Config
	line := func(k, format string, args ...any) { fmt.Fprintf(w, "%-17s %s\n", k+":", fmt.Sprintf(format, args...)) }
	line("file", "%s (%s, format version %d)", in.Path, size(in.Size), in.Version)
	switch in.Checksum {
	case checkpoints.ChecksumVerified:
		line("checksum", "verified (%s)", in.ChecksumValue)
	case checkpoints.ChecksumMismatch:
		line("checksum", "MISMATCH: the file is corrupt (stored %s)", in.ChecksumValue)
	case checkpoints.ChecksumNone:
		line("checksum", "none (govae always writes one: the file was made or altered elsewhere)")
	default:
		line("checksum", "not verified (-no-verify; stored %s)", in.ChecksumValue)
	}
	line("posterior", "%s", orDefault(c.Posterior, "diag"))
	line("prior", "%s", orDefault(c.Prior, "normal"))
	line("likelihood", "%s", orDefault(c.Likelihood, "bernoulli"))
	line("trunk", "%s, activation %s", orDefault(c.Trunk, "mlp"), orDefault(c.Activation, "relu"))
	dec := c.DecoderHidden
	if dec == nil {
		for i := len(c.Hidden) - 1; i >= 0; i-- {
			dec = append(dec, c.Hidden[i])
		}
	}
	line("widths", "%d -> %s -> z %d -> %s -> %d", c.DataDim, ints(c.Hidden), c.Latent, ints(dec), c.DataDim)
	if c.ImageRows > 0 {
		line("image", "%dx%d, %d channel(s)", c.ImageRows, c.ImageCols, max(c.ImageChannels, 1))
	}
	line("parameters", "%d in %d tensors, %s", in.NumParams, in.Tensors, orDefault(c.Dtype, "float32"))
	if d := in.Data; d != nil {
		line("dataset", "%s (found in %s)", d.Dataset, orDefault(d.Dir, "?"))
		if d.Binarize == "none" {
			line("binarization", "none (grey levels)")
		} else {
			line("binarization", "%s in training; evaluation data binarized once with seed %d", d.Binarize, d.EvalSeed)
		}
	} else {
		why := "this file was saved without its data description"
		if in.Version < 2 {
			why = fmt.Sprintf("format version %d files do not record their data", in.Version)
		}
		line("dataset", "not recorded (%s; cmd/eval needs -dataset)", why)
	}
	st := in.State
	if st == nil {
		line("training state", "absent (weights only: cannot -resume from this file)")
		return
	}
	exp := runinfo.ExperimentOf(st)
	if exp != "" {
		// The experiment keeps its rows in -out's checkpoints folder.
		out := "DIR"
		if dir := filepath.Dir(in.Path); filepath.Base(dir) == "checkpoints" {
			out = filepath.Dir(dir)
		}
		line("training state", "present (a row of the %s experiment: running it again with the same -out continues it, "+
			"go run ./experiments -run %s -out %s; not cmd/train -resume)", exp, exp, out)
	} else {
		line("training state", "present (resumable with cmd/train -resume)")
	}
	progress := fmt.Sprintf("%d epoch%s done, step %d", st.Epoch, plural(st.Epoch), st.Step)
	if st.Batch > 0 {
		progress += fmt.Sprintf(", %d batch%s into epoch %d", st.Batch, pluralEs(st.Batch), st.Epoch+1)
	}
	switch {
	case st.Options.Epochs > 0 && exp != "":
		// The experiment trains its schedule in stages, one run each.
		progress += fmt.Sprintf(" (the current stage ends at epoch %d)", st.Options.Epochs)
	case st.Options.Epochs > 0:
		progress += fmt.Sprintf(" (run of %d)", st.Options.Epochs)
	}
	line("progress", "%s", progress)
	if st.BestEpoch > 0 {
		line("best val ELBO", "%.4f nats per image (epoch %d; higher is better)", st.BestValELBO, st.BestEpoch)
	} else {
		line("best val ELBO", "none yet")
	}
	line("objective", "%s", objective(st.Options))
}

// objective describes what training maximized, in the vocabulary of cmd/train.
func objective(o amortized.TrainOptions) string {
	k := max(o.K, 1)
	s := "ELBO"
	if o.Objective == amortized.ObjectiveIWAE {
		s = fmt.Sprintf("IWAE bound, k=%d", k)
	} else if k > 1 {
		s = fmt.Sprintf("ELBO averaged over k=%d samples", k)
	}
	if o.Estimator == amortized.EstimatorScore {
		s += ", score-function gradients"
	}
	if o.WarmupEpochs > 0 {
		s += fmt.Sprintf(", KL warm-up over %g epochs", o.WarmupEpochs)
	}
	if o.FreeBits > 0 {
		s += fmt.Sprintf(", free bits %g nats per dimension", o.FreeBits)
	}
	lr := o.LR
	if lr == 0 {
		lr = 1e-3
	}
	return fmt.Sprintf("%s; Adam lr %g, seed %d", s, lr, o.Seed)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func ints(v []int) string {
	if len(v) == 0 {
		return "(none)"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "-")
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func pluralEs(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}
