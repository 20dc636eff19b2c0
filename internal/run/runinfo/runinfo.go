package runinfo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
)

// LatestFile is the checkpoint a run keeps resumable, in its directory.
const LatestFile = "model.safetensors"

// EvalBinarizeSeed fixes the binarization of validation and test images.
const EvalBinarizeSeed = 0

// TestNoise is the noise of the test ELBO a training run reports after each
// epoch, from the run's seed (experiments that compare with cmd/train use
// it too).
func TestNoise(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x74657374)) }

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

// ExperimentOf names the experiment whose checkpoint st is, from its run
// description: "burda" for a row of the burda experiment (its description
// holds the row's settings; see experiments/burdackpt.go), which running the
// experiment again with the same -out continues, not cmd/train -resume. It
// is "" for cmd/train's runs and for a file without a training state.
func ExperimentOf(st *amortized.TrainState) string {
	if st == nil || len(st.Run) == 0 {
		return ""
	}
	var r struct {
		Settings struct {
			Row string `json:"row"`
		} `json:"settings"`
	}
	if json.Unmarshal(st.Run, &r) == nil && r.Settings.Row != "" {
		return "burda"
	}
	return ""
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

// CanonicalPrior names the standard normal "normal" whether given or stored
// (configurations omit the default).
func CanonicalPrior(p string) string {
	if p == "" {
		return amortized.StandardNormal
	}
	return p
}

// PriorName is the configuration's prior as users write it.
func PriorName(c amortized.Config) string { return CanonicalPrior(c.Prior) }

// KLWeighting describes the KL's weight in the loss when it is not the
// ELBO's ("" when it is).
func KLWeighting(o amortized.TrainOptions) string {
	switch {
	case o.Capacity():
		return fmt.Sprintf(", capacity objective %g |KL - C|, C rising to %g nats over %d steps", o.CapacityGamma, o.CapacityMax, o.CapacitySteps)
	case o.KLWeight != 0 && o.KLWeight != 1:
		return fmt.Sprintf(", KL weight beta = %g", o.KLWeight)
	}
	return ""
}

// BoundNote says, for a model trained on another objective than the ELBO's
// KL weighting, that its reported ELBO and log p(x) are the true bound and
// estimate, but that it was not trained to maximize them.
func BoundNote(o amortized.TrainOptions) string {
	if KLWeighting(o) == "" {
		return ""
	}
	return "trained with the KL weighted otherwise than by 1; the ELBOs reported are the true ELBO (KL weight 1), and its log p(x) compares with other models' only as a bound-based estimate, not as what this objective maximized"
}
