package trainrun

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/testutil"
)

func savedStep(t *testing.T, path string) int64 {
	t.Helper()
	_, _, st, err := checkpoints.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.Fatalf("%s has no training state", path)
	}
	return st.Step
}

func keptSteps(t *testing.T, dir string) []int64 {
	t.Helper()
	steps, err := keptFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// TestSaveEveryCrashResumesExactly saves every 5 steps, takes a copy of the
// run directory at step 22 (what a kill -9 there would leave), resumes from
// the copy, and requires what an uninterrupted run without mid-epoch saves
// gives: the same weights and the same metrics.
func TestSaveEveryCrashResumesExactly(t *testing.T) {
	ds := writeDataset(t)
	plain := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, plain, 3)); err != nil {
		t.Fatal(err)
	}

	saving := t.TempDir()
	var crashed string
	cfg := baseConfig(ds, saving, 3)
	cfg.SaveSteps, cfg.Keep = 5, 2
	cfg.afterStep = func(_ *amortized.Trainer, s amortized.StepStats) {
		if s.Step == 22 {
			crashed = testutil.CopyDir(t, saving)
		}
	}
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !sameFloats(weights(t, filepath.Join(plain, LatestFile)), weights(t, filepath.Join(saving, LatestFile))) {
		t.Fatal("saving every 5 steps changed the weights")
	}
	// Saves at steps 5, 10, 12 (epoch end), 15, 20, 24, 25, 30, 35, 36.
	if got := keptSteps(t, saving); !slices.Equal(got, []int64{35, 36}) {
		t.Errorf("kept checkpoints at steps %v, want the last two saves, 35 and 36", got)
	}

	if got := savedStep(t, filepath.Join(crashed, LatestFile)); got != 20 {
		t.Fatalf("at step 22 model.safetensors holds step %d, want 20", got)
	}
	if got := keptSteps(t, crashed); !slices.Equal(got, []int64{15, 20}) {
		t.Errorf("at step 22 kept checkpoints %v, want [15 20]", got)
	}
	cfg = baseConfig(ds, crashed, 3)
	cfg.Resume, cfg.SaveSteps, cfg.Keep = true, 5, 2
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !sameFloats(weights(t, filepath.Join(plain, LatestFile)), weights(t, filepath.Join(crashed, LatestFile))) {
		t.Fatal("the run resumed from the step-20 save ended with other weights")
	}
	a, b := metricsLines(t, plain), metricsLines(t, crashed)
	if len(b) != 3 {
		t.Fatalf("%d metrics lines after resuming, want 3", len(b))
	}
	for i := range a {
		if field(a[i], "train_elbo") != field(b[i], "train_elbo") || field(a[i], "test_elbo") != field(b[i], "test_elbo") {
			t.Errorf("epoch %d metrics differ:\n%s\n%s", i+1, a[i], b[i])
		}
	}
	// A kept copy is itself resumable.
	if _, _, err := checkpoints.LoadTraining(filepath.Join(crashed, KeptFile(35))); err != nil {
		t.Fatal(err)
	}
}

// TestSaveInterval saves by time: with a tiny interval after every step,
// with a long one only at epoch ends.
func TestSaveInterval(t *testing.T) {
	ds := writeDataset(t)
	for _, tc := range []struct {
		interval time.Duration
		want     int64 // the step model.safetensors holds after step 22
	}{{time.Nanosecond, 21}, {time.Hour, 12}} {
		out := t.TempDir()
		cfg := baseConfig(ds, out, 2)
		cfg.SaveInterval = tc.interval
		var got int64 = -1
		cfg.afterStep = func(_ *amortized.Trainer, s amortized.StepStats) {
			if s.Step == 22 {
				got = savedStep(t, filepath.Join(out, LatestFile))
			}
		}
		if err := Train(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("save interval %v: at step 22 model.safetensors holds step %d, want %d", tc.interval, got, tc.want)
		}
	}
}

// TestKeepDropsAbandonedFuture goes back to an older kept checkpoint: the
// copies beyond it belong to the abandoned run and must not count as the
// most recent ones, or pruning would delete the new run's copies instead.
func TestKeepDropsAbandonedFuture(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 3)
	cfg.SaveSteps, cfg.Keep = 5, 2
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// Go back to step 15, taken from an identical run interrupted at step
	// 17 (whose kept copies are 15 and 17).
	old := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg = baseConfig(ds, old, 3)
	cfg.SaveSteps, cfg.Keep, cfg.LogEvery = 5, 2, 1
	cfg.Stdout = &cancelAfter{needle: "step 17 ", cancel: cancel}
	if err := Train(ctx, cfg); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(old, KeptFile(15)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, LatestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// out now resumes at step 15 beside kept copies of step 35 and later.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	cfg = baseConfig(ds, out, 3)
	cfg.Resume, cfg.SaveSteps, cfg.Keep, cfg.LogEvery = true, 5, 2, 1
	cfg.Stdout = &cancelAfter{needle: "step 21 ", cancel: cancel}
	if err := Train(ctx, cfg); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	if got := keptSteps(t, out); !slices.Equal(got, []int64{20, 21}) {
		t.Fatalf("kept checkpoints at steps %v, want [20 21]", got)
	}
	// Kept copies alone still mark the folder as a run; -force clears them.
	os.Remove(filepath.Join(out, LatestFile))
	cfg = baseConfig(ds, out, 1)
	if err := Train(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "holds files of a run") {
		t.Fatalf("fresh run over kept checkpoints: %v", err)
	}
	cfg.Force = true
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := keptSteps(t, out); len(got) != 0 {
		t.Errorf("-force left kept checkpoints %v", got)
	}
	if _, err := os.Stat(filepath.Join(out, "samples-e003.png")); err == nil {
		t.Error("-force left the old run's pictures")
	}
}

// poisonAt returns a fault injector that sets a weight to NaN after the
// given step while the learning rate exceeds maxLR, the way a too-large
// step size wrecks a model. The next step's loss is then NaN, which the
// trainer's own guard reports.
func poisonAt(step int64, maxLR float64) func(*amortized.Trainer, amortized.StepStats) {
	return func(t *amortized.Trainer, s amortized.StepStats) {
		if s.Step == step && t.Options().LR > maxLR {
			// The decoder's output bias: it reaches the loss whatever the
			// activations do with a NaN.
			ps := t.Model().Params().All()
			ps[len(ps)-1].Float32s()[0] = float32(math.NaN())
		}
	}
}

// TestRollback diverges (by injection) while the learning rate is above
// 1.5e-3, and requires -on-nan rollback to go back to the last save, halve
// the rate until it is cured, log each rollback, and end with the very
// weights of a run resumed from that save with the final rate.
func TestRollback(t *testing.T) {
	ds := writeDataset(t)
	for _, tc := range []struct {
		name     string
		poison   int64
		lr       float64
		wantLogs []string
		// reference builds the run that rollback must reproduce.
		reference func(t *testing.T, dir string)
	}{{
		name: "to the epoch-1 checkpoint", poison: 20, lr: 4e-3,
		wantLogs: []string{
			"training diverged at epoch 2, step 21",
			"rollback 1 of 3: back to step 12 (", "with learning rate 0.002 (was 0.004)",
			"rollback 2 of 3: back to step 12 (", "with learning rate 0.001 (was 0.002)",
		},
		reference: func(t *testing.T, dir string) {
			cfg := baseConfig(ds, dir, 1)
			cfg.Train.LR = 4e-3
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			cfg = baseConfig(ds, dir, 3)
			cfg.Resume, cfg.Train.LR = true, 1e-3
			cfg.Explicit = map[string]bool{"epochs": true, "lr": true}
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "to the initial weights", poison: 5, lr: 2e-3,
		wantLogs: []string{
			"training diverged at epoch 1, step 6",
			"rollback 1 of 3: back to step 0 (the initial weights", "with learning rate 0.001 (was 0.002)",
		},
		reference: func(t *testing.T, dir string) {
			cfg := baseConfig(ds, dir, 3)
			cfg.Train.LR = 1e-3
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			cfg := baseConfig(ds, out, 3)
			cfg.Train.LR, cfg.OnNonFinite = tc.lr, "rollback"
			cfg.afterStep = poisonAt(tc.poison, 1.5e-3)
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			log := cfg.Stdout.(fmt.Stringer).String()
			for _, want := range tc.wantLogs {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			ref := t.TempDir()
			tc.reference(t, ref)
			if !sameFloats(weights(t, filepath.Join(ref, LatestFile)), weights(t, filepath.Join(out, LatestFile))) {
				t.Error("the rolled-back run differs from a run resumed from its last save with the final learning rate")
			}
			for _, f := range []string{"samples-e003.png", "recon-e003.png"} {
				if fileHash(t, filepath.Join(ref, f)) != fileHash(t, filepath.Join(out, f)) {
					t.Errorf("%s differs from the reference run's: drawn with the wrong model?", f)
				}
			}
			if lines := metricsLines(t, out); len(lines) != 3 {
				t.Errorf("%d metrics lines, want one per epoch:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			// The halved rate is part of the saved state, so -resume keeps it.
			_, _, st, err := checkpoints.Inspect(filepath.Join(out, LatestFile))
			if err != nil || st.Options.LR != 1e-3 {
				t.Errorf("saved learning rate %v (%v), want 0.001", st.Options.LR, err)
			}
		})
	}
}

// TestRollbackGivesUp allows one rollback against a fault that no learning
// rate cures: training must stop with the epoch and step, say it gave up,
// and leave the last good checkpoint as it was.
func TestRollbackGivesUp(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, filepath.Join(out, LatestFile))
	cfg := baseConfig(ds, out, 3)
	cfg.Resume, cfg.OnNonFinite, cfg.MaxRollbacks = true, "rollback", 1
	cfg.Explicit["epochs"] = true
	cfg.afterStep = poisonAt(14, 0)
	err := Train(context.Background(), cfg)
	var nf *amortized.NonFiniteError
	if !errors.As(err, &nf) || nf.Epoch != 2 || nf.Step != 15 {
		t.Fatalf("err = %v, want a NonFiniteError at epoch 2, step 15", err)
	}
	for _, want := range []string{"giving up after 1 rollbacks", "holds the last good state (step 12)", "-resume"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if log := cfg.Stdout.(fmt.Stringer).String(); strings.Count(log, "rollback 1 of 1") != 1 {
		t.Errorf("log should show exactly one rollback:\n%s", log)
	}
	if fileHash(t, filepath.Join(out, LatestFile)) != before {
		t.Fatal("model.safetensors changed")
	}
}

// TestNonFiniteWeightsAreNeverSaved poisons the weights where a save is
// due, mid-epoch or at the end of an epoch: the save must be refused with
// the epoch, step and what was not finite, so that model.safetensors stays
// a state worth going back to and metrics.jsonl gets no line of NaNs.
func TestNonFiniteWeightsAreNeverSaved(t *testing.T) {
	ds := writeDataset(t)
	for _, tc := range []struct {
		poison    int64
		wantEpoch int
		wantWhat  string
		wantSaved int64
		wantLines int
	}{
		{poison: 20, wantEpoch: 2, wantWhat: "parameter decoder.", wantSaved: 12, wantLines: 1},
		{poison: 12, wantEpoch: 1, wantWhat: "the validation ELBO", wantSaved: 10, wantLines: 0},
	} {
		out := t.TempDir()
		cfg := baseConfig(ds, out, 2)
		cfg.SaveSteps = 10
		cfg.afterStep = poisonAt(tc.poison, 0)
		err := Train(context.Background(), cfg)
		var nf *amortized.NonFiniteError
		if !errors.As(err, &nf) || nf.Epoch != tc.wantEpoch || nf.Step != tc.poison || !strings.HasPrefix(nf.What, tc.wantWhat) {
			t.Errorf("poison at step %d: err = %v, want a NonFiniteError for %s at epoch %d, step %d", tc.poison, err, tc.wantWhat, tc.wantEpoch, tc.poison)
			continue
		}
		if got := savedStep(t, filepath.Join(out, LatestFile)); got != tc.wantSaved {
			t.Errorf("poison at step %d: model.safetensors holds step %d, want %d", tc.poison, got, tc.wantSaved)
		}
		b, _ := os.ReadFile(filepath.Join(out, MetricsFile))
		if n := strings.Count(string(b), "\n"); n != tc.wantLines || strings.Contains(string(b), "NaN") {
			t.Errorf("poison at step %d: metrics.jsonl has %d lines, want %d:\n%s", tc.poison, n, tc.wantLines, b)
		}
	}
}
