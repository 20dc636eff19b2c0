package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
)

func TestBadFlagsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-latent", "0"}, "-latent 0"},
		{[]string{"-hidden", "400,-3"}, "-hidden \"400,-3\""},
		{[]string{"-hidden", "abc"}, "positive integers"},
		{[]string{"-batch", "-1"}, "-batch -1"},
		{[]string{"-epochs", "0"}, "-epochs 0"},
		{[]string{"-lr", "0"}, "-lr 0"},
		{[]string{"-likelihood", "poisson"}, "likelihood \"poisson\""},
		{[]string{"-activation", "gelu"}, "unknown activation"},
		{[]string{"-posterior", "nosuch:4"}, "-posterior: amortized: posterior \"nosuch:4\": unknown family"},
		{[]string{"-posterior", "planar:0"}, "-posterior: amortized: posterior \"planar:0\": the number of flow steps K \"0\""},
		{[]string{"-posterior", "iaf:2:wide"}, "-posterior: amortized: posterior \"iaf:2:wide\": the hidden width H"},
		{[]string{"-posterior", "fullcov:2"}, "fullcov takes no parameters; want diag, fullcov, planar:K, radial:K, iaf:K or iaf:K:H"},
		{[]string{"-posterior", "fullcov", "-free-bits", "0.5"}, "-posterior fullcov with -free-bits 0.5 -estimator pathwise: amortized: free bits"},
		{[]string{"-posterior", "radial:2", "-estimator", "score"}, "-posterior radial:2 with -free-bits 0 -estimator score: amortized: the score-function estimator needs log q(z|x) at a given z"},
		{[]string{"-free-bits", "-1"}, "-free-bits -1"},
		{[]string{"-val", "-5"}, "-val -5"},
		{[]string{"-objective", "vae"}, "-objective \"vae\""},
		{[]string{"-k", "0"}, "-k 0"},
		{[]string{"-estimator", "reinforce"}, "-estimator \"reinforce\""},
		{[]string{"-objective", "iwae", "-estimator", "score"}, "score-function estimator is implemented for the ELBO"},
		{[]string{"-objective", "iwae", "-free-bits", "0.5"}, "IWAE bound does not have"},
		{[]string{"-save-every", "-3"}, "invalid value \"-3\" for flag -save-every"},
		{[]string{"-save-every", "10x"}, "duration such as 10m"},
		{[]string{"-keep", "-1"}, "-keep -1"},
		{[]string{"-on-nan", "retry"}, "-on-nan \"retry\""},
		{[]string{"-on-nan", "rollback", "-max-rollbacks", "0"}, "-max-rollbacks 0"},
		{[]string{"-max-rollbacks", "2"}, "only with -on-nan rollback"},
		{[]string{"-shards", "-1"}, "-shards -1: want 1 to -batch (128)"},
		{[]string{"-batch", "16", "-shards", "17"}, "-shards 17: want 1 to -batch (16)"},
		{[]string{"-shards", "2", "-free-bits", "0.5"}, "-free-bits 0.5 -shards 2: amortized: free bits floor each dimension's KL averaged over the whole batch"},
		{[]string{"-shards", "2", "-estimator", "score"}, "-shards 2: amortized: the score-function estimator samples z for the whole batch"},
		{[]string{"-decoder-prior-sigma", "2"}, "-decoder-prior-sigma applies only with -bayes-decoder"},
		{[]string{"-bayes-decoder", "-decoder-prior-sigma", "0"}, "-decoder-prior-sigma 0: want a finite number > 0"},
		{[]string{"-bayes-decoder", "-decoder-prior-sigma", "-1"}, "-decoder-prior-sigma -1: want a finite number > 0"},
		{[]string{"-prior", "mog:0"}, "prior \"mog:0\": the number of components K \"0\""},
		{[]string{"-prior", "vamp:10:images"}, "the third part may only be \"data\""},
		{[]string{"-prior", "vamp:10", "-posterior", "planar:2"}, "the VampPrior needs log q(z|u_k) at any z, which the planar:2 posterior does not have"},
		{[]string{"-prior", "student"}, "unknown prior \"student\"; want normal, mog:K, vamp:K or vamp:K:data"},
		{[]string{"-prior", "mog:3", "-free-bits", "0.5"}, "which the diag posterior does not have with the mog:3 prior"},
		{[]string{"-beta", "0"}, "-beta 0: want a finite number > 0"},
		{[]string{"-beta", "2", "-objective", "iwae"}, "a KL weight or capacity acts on the ELBO's KL term"},
		{[]string{"-capacity", "25:1000"}, "-capacity \"25:1000\": 2 parts; want C_max:steps:gamma"},
		{[]string{"-capacity", "25:0:100"}, "steps \"0\" is not an integer >= 1"},
		{[]string{"-capacity", "-1:10:100"}, "C_max \"-1\" is not a finite number >= 0"},
		{[]string{"-capacity", "25:10:0"}, "gamma \"0\" is not a finite number > 0"},
		{[]string{"-capacity", "25:10:100", "-beta", "4"}, "a KL weight beta of 4 as well is ambiguous"},
		{[]string{"-capacity", "25:10:100", "-shards", "2"}, "the capacity objective acts on the KL averaged over the whole batch"},
		{[]string{"-nosuchflag"}, "not defined"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, err := parseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want trainrun.Config
	}{
		{[]string{"-save-every", "25", "-keep", "3"}, trainrun.Config{SaveSteps: 25, Keep: 3, OnNonFinite: "stop", MaxRollbacks: 3}},
		{[]string{"-save-every", "10m"}, trainrun.Config{SaveInterval: 10 * time.Minute, OnNonFinite: "stop", MaxRollbacks: 3}},
		{[]string{"-on-nan", "rollback", "-max-rollbacks", "5"}, trainrun.Config{OnNonFinite: "rollback", MaxRollbacks: 5}},
	} {
		c, err := parseFlags(tc.args)
		got := trainrun.Config{SaveSteps: c.SaveSteps, SaveInterval: c.SaveInterval, Keep: c.Keep, OnNonFinite: c.OnNonFinite, MaxRollbacks: c.MaxRollbacks}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	// Every posterior form parses, alone and with the IWAE objective.
	for _, post := range []string{"diag", "fullcov", "planar:8", "radial:4", "iaf:2", "iaf:4:100"} {
		for _, extra := range [][]string{nil, {"-objective", "iwae", "-k", "5"}} {
			c, err := parseFlags(append([]string{"-posterior", post}, extra...))
			if err != nil || c.Model.Posterior != post {
				t.Errorf("-posterior %s %v: %q, %v", post, extra, c.Model.Posterior, err)
			}
		}
	}
	// Through run(): a usage error exits 2, and so does one found later
	// (a batch larger than the data), without touching the output directory
	// beyond creating it.
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 50, 10); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-latent", "0"}); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	out := filepath.Join(t.TempDir(), "run")
	if code := run([]string{"-dataset", "tiny", "-data-dir", dir, "-batch", "1000", "-out", out, "-offline"}); code != 2 {
		t.Errorf("batch larger than the data: exit %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err == nil {
		t.Error("a checkpoint was written by a run that never started")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// trainBinary builds the command once, for the tests that run it as a user
// does: real signals, real exit codes, real stderr.
func trainBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "govae-train-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "train")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestSignalSavesResumableCheckpoint runs the real binary, stops it with
// SIGINT (Ctrl-C) or SIGTERM during training, and expects exit status 0, a
// message, and a checkpoint from which -resume finishes the run.
func TestSignalSavesResumableCheckpoint(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 2000, 100); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out := t.TempDir()
			args := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", out, "-batch", "4", "-epochs", "50", "-log-every", "20", "-force"}
			cmd := exec.Command(bin, args...)
			stdout, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stdout)
			var lines []string
			signalled := false
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if !signalled && strings.HasPrefix(sc.Text(), "step 60 ") {
					cmd.Process.Signal(sig)
					signalled = true
				}
			}
			err := cmd.Wait()
			if !signalled {
				t.Fatalf("never saw step 60; output:\n%s\n%s", strings.Join(lines, "\n"), &stderr)
			}
			if err != nil {
				t.Fatalf("exit: %v, want status 0; output:\n%s\n%s", err, strings.Join(lines, "\n"), &stderr)
			}
			last := lines[len(lines)-1]
			if !strings.Contains(last, "interrupted at epoch 1") || !strings.Contains(last, "-resume") {
				t.Fatalf("last line %q, want the interruption message", last)
			}
			_, _, st, err := checkpoints.Inspect(filepath.Join(out, "model.safetensors"))
			if err != nil || st.Step < 60 || st.Epoch != 0 {
				t.Fatalf("saved state %+v, %v", st, err)
			}
			resume := exec.Command(bin, "-resume", "-out", out, "-epochs", "1")
			if b, err := resume.CombinedOutput(); err != nil || !strings.Contains(string(b), "done: 1 epoch,") {
				t.Fatalf("resume: %v\n%s", err, b)
			}
		})
	}
}

// TestBayesDecoderFlags: -bayes-decoder makes the model's decoder Bayesian
// with -decoder-prior-sigma (default 1); without it the decoder is plain.
func TestBayesDecoderFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want float64
	}{{nil, 0}, {[]string{"-bayes-decoder"}, 1}, {[]string{"-bayes-decoder", "-decoder-prior-sigma", "0.3"}, 0.3}} {
		cfg, err := parseFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Model.DecoderPriorSigma != tc.want {
			t.Errorf("%v: decoder prior sigma %g, want %g", tc.args, cfg.Model.DecoderPriorSigma, tc.want)
		}
	}
}
