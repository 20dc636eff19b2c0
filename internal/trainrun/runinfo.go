package trainrun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
)

// RunInfo is the part of a training run's description (saved in the
// training state) that says where the data came from and how it was fed.
type RunInfo struct {
	Dataset  string `json:"dataset"`
	DataDir  string `json:"data_dir"`
	Binarize string `json:"binarize"`
}

// RunOf returns the description of the data the checkpoint at path was
// trained on: its own (every file of format version 2 written by training
// has one, best.safetensors included), or for an older file the run
// description in its training state or, when that holds weights only, in
// model.safetensors beside it if that is a model of the same shape. It
// returns false when none has one; callers then use their defaults.
func RunOf(path string, cfg amortized.Config) (RunInfo, bool) {
	if d, err := checkpoints.ReadData(path); err == nil && d != nil {
		r := RunInfo{Dataset: d.Dataset, Binarize: d.Binarize}
		// The folder it was found in, if it is still there (a copied file
		// on another machine searches the usual places instead).
		if fi, err := os.Stat(d.Dir); err == nil && fi.IsDir() {
			r.DataDir = d.Dir
		}
		return r, true
	}
	paths := []string{path}
	if latest := filepath.Join(filepath.Dir(path), LatestFile); filepath.Clean(path) != latest {
		paths = append(paths, latest)
	}
	for _, p := range paths {
		_, c, st, err := checkpoints.Inspect(p)
		if err != nil || st == nil || len(st.Run) == 0 || !sameShape(c, cfg) {
			continue
		}
		var r RunInfo
		if json.Unmarshal(st.Run, &r) == nil {
			return r, true
		}
	}
	return RunInfo{}, false
}

func sameShape(a, b amortized.Config) bool {
	return a.DataDim == b.DataDim && a.Latent == b.Latent && slices.Equal(a.Hidden, b.Hidden)
}

// EvalBinarization is how training evaluated a model: a static draw (seed
// EvalBinarizeSeed) unless the run used grey levels or, without a run
// description, the model is Gaussian.
func EvalBinarization(r RunInfo, cfg amortized.Config) data.Binarization {
	b := r.Binarize
	if b == "" && cfg.Preprocess() == amortized.PreprocessGrey {
		b = "none"
	}
	if b == "none" {
		return data.BinarizeNone
	}
	return data.BinarizeStatic
}

// IsImageFolder says whether dir is a folder of PNG/JPEG images (the kind
// whose size and channels are options), not IDX files or CIFAR-10.
func IsImageFolder(dir string) bool {
	if dir == "" {
		return false
	}
	kind, _ := data.DetectKind(dir)
	return kind == data.KindImageFolder
}
