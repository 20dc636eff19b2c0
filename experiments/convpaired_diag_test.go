package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/torchpeer"
)

// TestReplayAdamEpsilon (opt-in: GOVAE_PAIRED_DIAG=1, about 3 CPU-minutes)
// records the peer's first 200 steps of seed 1 and replays them through
// ours with Adam's epsilon 1e-8 (the default; on the batch-mean loss) and
// 1e-8/128 (what the peer's 1e-8 on the batch sum is for a mean), logging
// the relative loss difference at some steps: how much of the sides'
// drift is the epsilon. It checks nothing.
func TestReplayAdamEpsilon(t *testing.T) {
	if os.Getenv("GOVAE_PAIRED_DIAG") == "" {
		t.Skip("opt-in diagnostic: set GOVAE_PAIRED_DIAG=1")
	}
	root := dataRoot(t)
	peer := findConvPeer(filepath.Join(root, "mnist"))
	if peer.why != "" {
		t.Skip(peer.why)
	}
	dir := t.TempDir()
	{
		_, err := torchpeer.RunPaired(context.Background(), torchpeer.PairedOptions{Python: peer.python, Peer: peer.script,
			Data: filepath.Join(root, "mnist"), Out: dir, Seed: 1, Epochs: 3, MaxSteps: 200}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := torchpeer.ReadReplay(dir, cpLatent)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	for _, eps := range []float64{1e-8, 1e-8 / 128} {
		tr := newReplayTrainer(t, rep, 10000, amortized.TrainOptions{Epochs: 3, AdamEps: eps})
		train := &replayBatches{rep: rep, n: 10000, batch: batchSize}
		var got []float64
		h := amortized.Hooks{AfterStep: func(_ *amortized.Trainer, s amortized.StepStats) error {
			got = append(got, s.Loss)
			if len(got) == len(rep.StepLoss) {
				return stop
			}
			return nil
		}}
		err = tr.Fit(context.Background(), train, nil, h)
		if !errors.Is(err, stop) {
			t.Fatal(err)
		}
		line := fmt.Sprintf("Adam epsilon %g; step: |Δloss|/loss (govae/peer loss):", eps)
		for _, s := range []int{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 50, 60, 70, 78, 79, 80, 81, 90, 100, 120, 150, 158, 159, 160, 180, 200} {
			i := s - 1
			line += fmt.Sprintf(" %d:%.1e(%.1f/%.1f)", s, math.Abs(got[i]-rep.StepLoss[i])/rep.StepLoss[i], got[i], rep.StepLoss[i])
		}
		t.Log(line)
		tr.Close() // before the next model
	}
}
