package checkpoints

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/nets"
)

// Metadata keys and values that mark a file as one of ours.
const (
	// FormatName is the value of metadata "format".
	FormatName = "govae-checkpoint"
	// FormatVersion is the version this code writes and the newest it
	// reads. Version 2 added the metadata "data" (see [Data]) and the
	// configuration's parts fields (prior, trunk, image_channels); version 1
	// files read as before, without a data description.
	FormatVersion = 2

	keyFormat  = "format"
	keyVersion = "format_version"
	keyConfig  = "config"
	keyState   = "train_state"
	keyData    = "data"

	// Prefixes of the optimizer's moment tensors.
	prefixAdamM = "adam_m."
	prefixAdamV = "adam_v."
)

// Data describes the data a model was trained on. Training records it in
// every file it writes (best.safetensors too), so that a copied file
// evaluates on its own dataset with nothing beside it.
type Data struct {
	Dataset  string `json:"dataset"`   // the dataset's name: "mnist", "fashion-mnist", ...
	Dir      string `json:"dir"`       // the folder it was found in
	Binarize string `json:"binarize"`  // how training fed pixels: dynamic, static or none
	EvalSeed uint64 `json:"eval_seed"` // seed of the static binarization of evaluation data
	Rows     int    `json:"rows"`      // image shape
	Cols     int    `json:"cols"`
	Channels int    `json:"channels"`
	// KLWeighting describes how the training loss weighed the KL when not
	// as the ELBO does ("KL weight beta = 4", a capacity objective); ""
	// means as the ELBO. Evaluations say so beside log p(x).
	KLWeighting string `json:"kl_weighting,omitempty"`
}

// Save writes m, and the training state st when it is not nil, to path
// atomically: a crash leaves either the old file or the new one.
func Save(path string, m *amortized.Model, st *amortized.TrainState) error {
	return SaveWithData(path, m, st, nil)
}

// SaveWithData is Save that also records the data the model was trained
// on (when d is not nil).
func SaveWithData(path string, m *amortized.Model, st *amortized.TrainState, d *Data) error {
	cfg, err := json.Marshal(m.Config())
	if err != nil {
		return fmt.Errorf("checkpoints: %s: encoding config: %w", path, err)
	}
	f := &File{Metadata: map[string]string{
		keyFormat:  FormatName,
		keyVersion: strconv.Itoa(FormatVersion),
		keyConfig:  string(cfg),
	}}
	if d != nil {
		js, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("checkpoints: %s: encoding data description: %w", path, err)
		}
		f.Metadata[keyData] = string(js)
	}
	if err := addParams(f, "", m.Params()); err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if st != nil {
		js, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("checkpoints: %s: encoding training state: %w", path, err)
		}
		f.Metadata[keyState] = string(js)
		if st.AdamM == nil || st.AdamV == nil {
			return fmt.Errorf("checkpoints: %s: training state without optimizer moments", path)
		}
		if err := addParams(f, prefixAdamM, st.AdamM); err != nil {
			return fmt.Errorf("checkpoints: %s: %w", path, err)
		}
		if err := addParams(f, prefixAdamV, st.AdamV); err != nil {
			return fmt.Errorf("checkpoints: %s: %w", path, err)
		}
	}
	return WriteFile(path, f)
}

func addParams(f *File, prefix string, ps *nets.Params) error {
	for _, p := range ps.All() {
		var err error
		if v := p.Float32s(); v != nil {
			err = f.AddFloat32(prefix+p.Name, p.Shape, v)
		} else {
			err = f.AddFloat64(prefix+p.Name, p.Shape, p.Float64s())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Load reads a model from a checkpoint written by Save.
func Load(path string) (*amortized.Model, error) {
	_, m, err := load(path)
	return m, err
}

// LoadTraining reads a model and the training state saved with it, to
// resume training. A checkpoint saved without state is an error.
func LoadTraining(path string) (*amortized.Model, *amortized.TrainState, error) {
	f, m, err := load(path)
	if err != nil {
		return nil, nil, err
	}
	js, ok := f.Metadata[keyState]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoints: %s: holds weights only, no training state to resume from", path)
	}
	st := &amortized.TrainState{}
	if err := json.Unmarshal([]byte(js), st); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyState, err)
	}
	st.AdamM, st.AdamV = m.Params().ZerosLike(), m.Params().ZerosLike()
	if err := readParams(f, prefixAdamM, st.AdamM); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := readParams(f, prefixAdamV, st.AdamV); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := checkState(st); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return m, st, nil
}

// Inspect reads a checkpoint's format version, model configuration and
// training state (nil when saved without) without building the model.
func Inspect(path string) (version int, cfg amortized.Config, st *amortized.TrainState, err error) {
	f, err := ReadFile(path)
	if err != nil {
		return 0, cfg, nil, err
	}
	if version, cfg, err = header(path, f); err != nil {
		return 0, cfg, nil, err
	}
	if js, ok := f.Metadata[keyState]; ok {
		st = &amortized.TrainState{}
		if err := json.Unmarshal([]byte(js), st); err != nil {
			return 0, cfg, nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyState, err)
		}
	}
	return version, cfg, st, nil
}

// ReadData returns the description of the data the model in the checkpoint
// at path was trained on, or nil when the file has none (files of version
// 1, and models saved without one).
func ReadData(path string) (*Data, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, _, err := header(path, f); err != nil {
		return nil, err
	}
	js, ok := f.Metadata[keyData]
	if !ok {
		return nil, nil
	}
	d := &Data{}
	if err := json.Unmarshal([]byte(js), d); err != nil {
		return nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyData, err)
	}
	return d, nil
}

// header checks that f is one of ours in a version we read, and returns its config.
func header(path string, f *File) (int, amortized.Config, error) {
	var cfg amortized.Config
	if f.Metadata[keyFormat] != FormatName {
		return 0, cfg, fmt.Errorf("checkpoints: %s: not a govae checkpoint (metadata %q is %q, want %q)", path, keyFormat, f.Metadata[keyFormat], FormatName)
	}
	if !f.HasChecksum() {
		return 0, cfg, fmt.Errorf("checkpoints: %s: has no checksum; govae always writes one, so the file was altered or made elsewhere", path)
	}
	v, err := strconv.Atoi(f.Metadata[keyVersion])
	if err != nil || v < 1 {
		return 0, cfg, fmt.Errorf("checkpoints: %s: format version %q, want a positive integer", path, f.Metadata[keyVersion])
	}
	if v > FormatVersion {
		return 0, cfg, fmt.Errorf("checkpoints: %s: format version %d is newer than this program reads (%d); use a newer govae", path, v, FormatVersion)
	}
	if err := json.Unmarshal([]byte(f.Metadata[keyConfig]), &cfg); err != nil {
		return 0, cfg, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyConfig, err)
	}
	return v, cfg, nil
}

func load(path string) (*File, *amortized.Model, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	_, cfg, err := header(path, f)
	if err != nil {
		return nil, nil, err
	}
	// The configuration decides what New allocates: check it against the
	// values the file really holds first, so a forged header cannot make
	// us allocate gigabytes.
	// NumParams defines the model into a counting store: nothing is
	// allocated for the weights.
	want, err := cfg.NumParams()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	var have int64
	for _, t := range f.Tensors {
		if !strings.HasPrefix(t.Name, prefixAdamM) && !strings.HasPrefix(t.Name, prefixAdamV) && t.DType.Size() > 0 {
			have += int64(len(t.Data) / t.DType.Size())
		}
	}
	if want > have { // fewer is caught below, tensor by tensor, with a precise message
		return nil, nil, fmt.Errorf("checkpoints: %s: the configuration describes %d parameters, the file holds %d values", path, want, have)
	}
	m, err := amortized.New(cfg, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := readParams(f, "", m.Params()); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := checkNoStrangers(f, m.Params()); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := checkWeights(m.Params()); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return f, m, nil
}

// readParams fills ps from the tensors named prefix+name, checking shapes.
func readParams(f *File, prefix string, ps *nets.Params) error {
	for _, p := range ps.All() {
		name := prefix + p.Name
		var n int
		var shape []int
		var err error
		if dst := p.Float32s(); dst != nil {
			var v []float32
			v, shape, err = f.Float32(name)
			n = copy(dst, v)
		} else {
			var v []float64
			v, shape, err = f.Float64(name)
			n = copy(p.Float64s(), v)
		}
		if err != nil {
			return err
		}
		if !equalShape(shape, p.Shape) || n != p.Len() {
			return fmt.Errorf("tensor %q has shape %v, the configuration wants %v", name, shape, p.Shape)
		}
	}
	return nil
}

// checkNoStrangers rejects tensors that are neither parameters of the
// configured model nor their optimizer moments: such a file was written for
// another architecture or by another program.
func checkNoStrangers(f *File, ps *nets.Params) error {
	known := map[string]bool{}
	for _, p := range ps.All() {
		known[p.Name], known[prefixAdamM+p.Name], known[prefixAdamV+p.Name] = true, true, true
	}
	for _, t := range f.Tensors {
		if !known[t.Name] {
			return fmt.Errorf("tensor %q is not part of the configured model", t.Name)
		}
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
