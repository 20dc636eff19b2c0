package evalrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/run/trainrun"
)

// An evaluation of the test split does not read the training images: with
// that file broken it gives the same report, and -split train names it.
func TestTestSplitReadsNoTrainingImages(t *testing.T) {
	run, dataDir := trainedRun(t)
	eval := func(split string) (*Report, error) {
		return Run(context.Background(), Config{Checkpoint: filepath.Join(run, trainrun.BestFile), K: 20, Seed: 1, Split: split, Stdout: &bytes.Buffer{}, Offline: true})
	}
	before, err := eval("test")
	if err != nil {
		t.Fatal(err)
	}
	train := filepath.Join(dataDir, "train-images-idx3-ubyte")
	if err := os.WriteFile(train, []byte("not an IDX file"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := eval("test")
	if err != nil {
		t.Fatalf("the test split with the training images broken: %v", err)
	}
	if after.LogPx != before.LogPx || after.ELBO != before.ELBO || after.N != before.N {
		t.Fatalf("report changed: log p(x) %v -> %v, ELBO %v -> %v, n %d -> %d", before.LogPx, after.LogPx, before.ELBO, after.ELBO, before.N, after.N)
	}
	if _, err := eval("train"); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Fatalf("-split train on a broken training file: %v, want an error naming it", err)
	}
}
