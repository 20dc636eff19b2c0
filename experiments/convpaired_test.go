package main

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/torchpeer"
)

func TestPairedCompare(t *testing.T) {
	// d = 1, 2, 3, 4: mean 2.5, SD sqrt(5/3), SE sqrt(5/3)/2, t(0.95, 3) = 2.353363.
	s := pairedCompare([]float64{1, 2, 3, 4}, 0.5)
	se := math.Sqrt(5.0/3) / 2
	if math.Abs(s.Mean-2.5) > 1e-12 || math.Abs(s.SE-se) > 1e-12 || math.Abs(s.Lo-(2.5-2.353363*se)) > 1e-5 || s.Equivalent {
		t.Errorf("%+v", s)
	}
	// (1.644854 + 1.281552)^2 (5/3) / 0.25 = 57.09 -> 58.
	if s.Needed != 58 {
		t.Errorf("needed %d pairs, want 58", s.Needed)
	}
	if s := pairedCompare([]float64{0.01, -0.02, 0.03, 0, 0.01}, 0.5); !s.Equivalent {
		t.Errorf("tight differences near 0: %+v, want equivalent", s)
	}
	if s := pairedCompare([]float64{0.7, 0.71, 0.69}, 0.5); s.Equivalent || s.Lo < 0.5 {
		t.Errorf("differences near 0.7: %+v, want not equivalent, interval above the margin", s)
	}
}

// TestReplayMatchesPeerSteps records the peer's first 3 steps on 384
// MNIST images and replays them through ours: from the same weights, on
// the same batches with the same noise, the losses must agree to float32
// rounding. It skips without torch or the data.
func TestReplayMatchesPeerSteps(t *testing.T) {
	const n, steps = 384, 3
	rep := recordPeer(t, torchpeer.PairedOptions{Seed: 3, Epochs: 1, TrainN: n, MaxSteps: steps})
	if rep.TrainRows() != n || len(rep.StepLoss) != steps || rep.TestRows() != 10000 {
		t.Fatalf("recorded %d rows, %d steps, %d test images", rep.TrainRows(), len(rep.StepLoss), rep.TestRows())
	}
	tr := newReplayTrainer(t, rep, n, amortized.TrainOptions{Epochs: 1})
	defer tr.Close()
	var got []float64
	h := amortized.Hooks{AfterStep: func(_ *amortized.Trainer, s amortized.StepStats) error {
		got = append(got, s.Loss)
		return nil
	}}
	if err := tr.Fit(context.Background(), &replayBatches{rep: rep, n: n, batch: batchSize}, nil, h); err != nil {
		t.Fatal(err)
	}
	for i, want := range rep.StepLoss {
		rel := math.Abs(got[i]-want) / math.Abs(want)
		t.Logf("step %d: loss %.6f, the peer's %.6f (relative difference %.1e)", i+1, got[i], want, rel)
		if rel > 1e-5 {
			t.Errorf("step %d: loss %.6f, the peer's %.6f", i+1, got[i], want)
		}
	}
}

// TestReplayMatchesPeerSteps64 is the float64 replay of convpaired64:
// the peer in float64 for 12 steps on 300 images (two full batches and a
// partial one of 44 rows per epoch), ours in float64 summing the batch
// loss. Both then compute the same training but for the order of
// operations, so the losses must agree to about 1e-12 at every step,
// the partial batches' included; a difference in the model, the loss, the
// gradient's scale or Adam would show far above that.
func TestReplayMatchesPeerSteps64(t *testing.T) {
	const n, steps = 300, 12
	rep := recordPeer(t, torchpeer.PairedOptions{Seed: 5, Epochs: 4, TrainN: n, TestN: 50, MaxSteps: steps, Float64: true})
	tr := newReplayTrainer(t, rep, n, amortized.TrainOptions{Epochs: 4, SumLoss: true})
	defer tr.Close()
	var got []float64
	var rows []int
	stop := errors.New("stop")
	h := amortized.Hooks{AfterStep: func(_ *amortized.Trainer, s amortized.StepStats) error {
		got, rows = append(got, s.Loss), append(rows, s.Rows)
		if len(got) == steps {
			return stop
		}
		return nil
	}}
	if err := tr.Fit(context.Background(), &replayBatches{rep: rep, n: n, batch: batchSize}, nil, h); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	for i, want := range rep.StepLoss {
		rel := math.Abs(got[i]-want) / math.Abs(want)
		t.Logf("step %d (%d rows): loss %.12f, the peer's %.12f (relative difference %.1e)", i+1, rows[i], got[i], want, rel)
		if rel > 1e-11 {
			t.Errorf("step %d: loss %.12f, the peer's %.12f", i+1, got[i], want)
		}
	}
}

// recordPeer runs paired.py with o on the MNIST subset into a temporary
// folder and reads its draws; it skips without torch or the data.
func recordPeer(t *testing.T, o torchpeer.PairedOptions) *torchpeer.Replay {
	t.Helper()
	root := dataRoot(t)
	peer := findConvPeer(filepath.Join(root, "mnist"))
	if peer.why != "" {
		t.Skip(peer.why)
	}
	o.Python, o.Peer, o.Data, o.Out = peer.python, peer.script, filepath.Join(root, "mnist"), t.TempDir()
	if _, err := torchpeer.RunPaired(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := torchpeer.ReadReplay(o.Out, cpLatent)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestPeerCrossCheck(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "convpeer"), 0o755); err != nil {
		t.Fatal(err)
	}
	curve := func(final float64) []float64 {
		c := make([]float64, 10)
		c[9] = final
		return c
	}
	lines := `{"side":"peer","seed":1,"test_elbo":[0,0,0,0,0,0,0,0,0,-118.42],"error":""}
{"side":"govae","seed":2,"test_elbo":[0,0,0,0,0,0,0,0,0,-100],"error":""}
{"side":"peer","seed":2,"test_elbo":[0,0,0,0,0,0,0,0,0,-120.28],"error":""}
`
	if err := os.WriteFile(filepath.Join(root, "convpeer", "runs.jsonl"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &env{Out: filepath.Join(root, "convpaired")}
	got := peerCrossCheck(e, []cprPair{{Seed: 1, Peer: curve(-118.42)}, {Seed: 2, Peer: curve(-120.30)}, {Seed: 3, Peer: curve(-1)}})
	if !strings.Contains(got, "seeds 1, 2,") || !strings.Contains(got, "at most 0.020 nats") {
		t.Errorf("got %q", got)
	}
}

func TestKeptPairs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	if ps, err := keptPairs(path, convPairedSize{Seeds: 3, Epochs: 2}); err != nil || ps != nil {
		t.Fatalf("no file: %v, %v", ps, err)
	}
	lines := `{"seed":1,"govae_test_elbo":[-130,-120],"peer_test_elbo":[-131,-121]}
{"seed":2,"govae_test_elbo":[-140,-125],"peer_test_elbo":[-139,-124]}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := keptPairs(path, convPairedSize{Seeds: 3, Epochs: 2})
	if err != nil || len(ps) != 2 || ps[1].Seed != 2 || ps[1].diff() != -1 {
		t.Fatalf("kept %+v, %v", ps, err)
	}
	if _, err := keptPairs(path, convPairedSize{Seeds: 3, Epochs: 10}); err == nil {
		t.Error("pairs of 2 epochs kept for a run of 10")
	}
}

// newReplayTrainer is ours (-arch convpeer) from rep's initial weights,
// replaying its batches of n images and its noise, with opts and Adam at
// learnRate.
func newReplayTrainer(t *testing.T, rep *torchpeer.Replay, n int, opts amortized.TrainOptions) *amortized.Trainer {
	t.Helper()
	cfg := amortized.Config{DataDim: 784, ImageRows: 28, ImageCols: 28, ImageChannels: 1, Latent: cpLatent, Trunk: amortized.ConvPeerTrunk,
		Likelihood: amortized.Bernoulli, Posterior: "diag"}
	if opts.SumLoss { // the float64 replay's
		cfg.Dtype = "float64"
	}
	m, err := amortized.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadPeerInit(m, rep); err != nil {
		t.Fatal(err)
	}
	opts.LR = learnRate
	tr, err := amortized.NewTrainer(m, batchSize, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SetNoise(replayNoise(rep, &replayBatches{rep: rep, n: n, batch: batchSize})); err != nil {
		tr.Close()
		t.Fatal(err)
	}
	return tr
}
