package trainrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/memstat"
	"github.com/govae/govae/internal/synth"
)

// rssPerEpoch is a Stdout that samples resident memory each time an epoch
// line ("epoch 3/6: train ELBO ...") is written, that is after the epoch's
// training, evaluation, metrics and pictures and before its checkpoints.
type rssPerEpoch struct {
	mu      sync.Mutex
	samples []memstat.Usage
	err     error
}

func (w *rssPerEpoch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.HasPrefix(p, []byte("epoch ")) && bytes.Contains(p, []byte(": train ELBO")) {
		u, err := memstat.Read()
		if err != nil && w.err == nil {
			w.err = err
		}
		w.samples = append(w.samples, u)
	}
	return len(p), nil
}

// referenceConfig trains the reference architecture (784-400-20-400-784,
// batch 128) on the MNIST-format files in dataDir.
func referenceConfig(dataDir, out string, epochs int, stdout *rssPerEpoch) Config {
	ref := amortized.ReferenceConfig()
	return Config{
		Dataset: "mnist", DataDir: dataDir, Offline: true, Batch: 128, ValSize: -1, Seed: 1,
		Model:    amortized.Config{Hidden: ref.Hidden, Latent: ref.Latent},
		Train:    amortized.TrainOptions{Epochs: epochs, Seed: 1},
		Out:      out,
		Explicit: map[string]bool{},
		Stdout:   stdout,
	}
}

// TestTrainingMemoryIsFlat trains the reference architecture for 6 short
// epochs and requires resident memory after the last epoch to be within
// 32 MiB of that after epoch 2 (by then the heap has reached its working
// size). Keeping 1 MiB per step, about one batch's activations, fails it
// (9 steps an epoch; some 60 MiB of growth when tried).
func TestTrainingMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the reference model for 6 epochs")
	}
	if _, err := memstat.Read(); err != nil {
		t.Skip(err)
	}
	ds := t.TempDir()
	if err := synth.WriteDataset(ds, 28, 1280, 200); err != nil {
		t.Fatal(err)
	}
	w := &rssPerEpoch{}
	const epochs = 6
	if err := Train(context.Background(), referenceConfig(ds, t.TempDir(), epochs, w)); err != nil {
		t.Fatal(err)
	}
	if w.err != nil || len(w.samples) != epochs {
		t.Fatalf("%d samples for %d epochs (%v)", len(w.samples), epochs, w.err)
	}
	const slack = 32 << 20
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	var trace []string
	for i, u := range w.samples {
		trace = append(trace, fmt.Sprintf("epoch %d: %.1f MiB", i+1, mib(u.RSS)))
	}
	t.Logf("resident memory per epoch: %s", strings.Join(trace, ", "))
	if second, last := w.samples[1].RSS, w.samples[epochs-1].RSS; last > second+slack {
		t.Errorf("resident memory grew from %.1f MiB after epoch 2 to %.1f MiB after epoch %d", mib(second), mib(last), epochs)
	}
}

// TestTrainingGCHeadroomLeavesDataOut trains on 24 MB of images and
// requires the collector's next goal to exceed the live heap by at most
// the live heap other than the images (and a few MiB of stacks and
// globals). With Go's default the excess is the whole live heap, the
// images included, so that the peak memory counted them twice: 192 MiB
// against 105 for the full MNIST and its 10,000-image subset, where the
// data differ by 37 MiB.
func TestTrainingGCHeadroomLeavesDataOut(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads 24 MB of images")
	}
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: the trainer leaves the collector alone")
	}
	const nTrain, nTest = 30000, 1000
	ds := t.TempDir()
	if err := synth.WriteDataset(ds, 28, nTrain, nTest); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := referenceConfig(ds, t.TempDir(), 1, &rssPerEpoch{})
	cfg.Model.Hidden = []int{32}
	var goal, live uint64
	cfg.afterStep = func(_ *amortized.Trainer, s amortized.StepStats) {
		if s.Step == 3 {
			m := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
			metrics.Read(m)
			goal, live = m[0].Value.Uint64(), m[1].Value.Uint64()
			cancel()
		}
	}
	if err := Train(ctx, cfg); err != nil && err != ErrInterrupted {
		t.Fatal(err)
	}
	const data = (nTrain + nTest) * 28 * 28
	if live < data || goal < live {
		t.Fatalf("live heap %d, goal %d with %d bytes of images", live, goal, data)
	}
	t.Logf("live heap %.1f MiB (%.1f MiB of images), next collection at %.1f MiB", float64(live)/(1<<20), float64(data)/(1<<20), float64(goal)/(1<<20))
	if rest := max(live-data, 4<<20); goal-live > rest+8<<20 {
		t.Errorf("the heap may grow %.1f MiB past its live %.1f MiB before a collection, want at most the %.1f MiB that are not images (+8)",
			float64(goal-live)/(1<<20), float64(live)/(1<<20), float64(rest)/(1<<20))
	}
}

// BenchmarkTrainReferenceMemory trains the reference model for 3 epochs on
// MNIST ($GOVAE_DATA/mnist) per iteration and reports the peak resident
// memory and its growth from the end of epoch 1 to the end of the last.
func BenchmarkTrainReferenceMemory(b *testing.B) {
	root := os.Getenv("GOVAE_DATA")
	if root == "" {
		b.Skip("GOVAE_DATA is not set: point it at the folder holding mnist/")
	}
	if _, err := memstat.Read(); err != nil {
		b.Skip(err)
	}
	const epochs = 3
	var peak, growth uint64
	for b.Loop() {
		if err := memstat.ResetPeak(); err != nil {
			b.Logf("the peak includes earlier work in this process: %v", err)
		}
		w := &rssPerEpoch{}
		cfg := referenceConfig(filepath.Join(root, "mnist"), b.TempDir(), epochs, w)
		if err := Train(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		u, err := memstat.Read()
		if err != nil || w.err != nil || len(w.samples) != epochs {
			b.Fatalf("sampling memory: %v, %v, %d samples", err, w.err, len(w.samples))
		}
		peak = max(peak, u.Peak)
		if last, first := w.samples[epochs-1].RSS, w.samples[0].RSS; last > first {
			growth = max(growth, last-first)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(growth)/(1<<20), "RSS-growth-MiB")
}
