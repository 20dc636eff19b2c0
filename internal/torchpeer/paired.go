package torchpeer

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// pairedScript runs the conv peer for one seed and writes out its random
// draws (see the file's docstring); it imports the peer unmodified.
//
//go:embed paired.py
var pairedScript []byte

// PairedOptions says which peer run to record.
type PairedOptions struct {
	Python, Peer string // the interpreter and peer_convvae_torch.py
	Data         string // the image folder (train- and t10k-images-idx3-ubyte.gz)
	Out          string // the folder the draws are written to, created
	Seed, Epochs int
	TrainN       int // the first TrainN training images (0: all, as the peer)
	TestN        int // the first TestN test images (0: all, as the peer)
	MaxSteps     int // stop after this many steps, before any evaluation (0: no limit)
	// IwaeK > 0 has the peer estimate log p(x) with IwaeK samples on the
	// first IwaeN test images after training (Replay.LogPx).
	IwaeK, IwaeN int
	// Float64 trains and evaluates in float64; the recorded draws and
	// initial weights are the float32 run's.
	Float64 bool
}

// RunPaired runs the peer as its main() does for o.Seed, writing its
// initial weights and every draw into o.Out (ReadReplay reads them), and
// returns its epoch lines; onRecord is as for Run.
func RunPaired(ctx context.Context, o PairedOptions, onRecord func(r *Result)) (*Result, error) {
	if o.Seed < 0 || o.Epochs < 1 || o.TrainN < 0 || o.TestN < 0 || o.MaxSteps < 0 || o.IwaeK < 0 || (o.IwaeK > 0 && o.IwaeN < 1) {
		return nil, fmt.Errorf("torchpeer: seed %d, %d epochs, %d and %d images, %d steps, log p(x) with k = %d on %d images: want a seed >= 0, epochs >= 1, n >= 1 with k > 0, the rest >= 0",
			o.Seed, o.Epochs, o.TrainN, o.TestN, o.MaxSteps, o.IwaeK, o.IwaeN)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(o.Out, "paired.py")
	if err := os.WriteFile(script, pairedScript, 0o644); err != nil {
		return nil, err
	}
	args := []string{"--peer", o.Peer, "--data", o.Data, "--out", o.Out, "--seed", strconv.Itoa(o.Seed),
		"--epochs", strconv.Itoa(o.Epochs), "--threads", "1", "--train-n", strconv.Itoa(o.TrainN), "--test-n", strconv.Itoa(o.TestN), "--max-steps", strconv.Itoa(o.MaxSteps)}
	if o.Float64 {
		args = append(args, "--float64")
	}
	if o.IwaeK > 0 {
		args = append(args, "--iwae-k", strconv.Itoa(o.IwaeK), "--iwae-n", strconv.Itoa(o.IwaeN))
	}
	res, err := Run(ctx, o.Python, script, args, onRecord)
	if err != nil && o.MaxSteps > 0 && res == nil && ctx.Err() == nil {
		// A run stopped after MaxSteps prints no epoch line, which Run
		// counts as a failure: the files tell whether it was one.
		if _, serr := os.Stat(filepath.Join(o.Out, "step_loss.f64")); serr == nil && errors.Is(err, errNoEpochs) {
			return &Result{}, nil
		}
	}
	return res, err
}

// Replay is what RunPaired wrote: the peer's initial weights and draws.
type Replay struct {
	Params []ReplayParam
	// TrainX holds each step's binarized rows in the order used, epoch
	// after epoch, 98 bytes a row (PackedRow); TrainEps their noise, Latent
	// values a row.
	TrainX   []byte
	TrainEps []float32
	TestX    []byte    // the peer's fixed binarization of the test images
	TestEps  []float32 // each epoch's evaluation noise, test image after image
	StepLoss []float64 // each step's loss over its rows (mean negative ELBO)
	LogPx    []float64 // the peer's log p(x) of each of the first test images (PairedOptions.IwaeK; nil without)
	Latent   int
}

// ReplayParam is one initial weight under govae's name and shape.
type ReplayParam struct {
	Name   string
	Shape  []int
	Values []float32
}

// Pixels and PackedRow: a 28x28 image, packed 8 pixels a byte, the first
// in the high bit (numpy's packbits).
const (
	Pixels    = 784
	PackedRow = Pixels / 8
)

// ReadReplay reads the folder RunPaired wrote for a model with latent
// dimension latent.
func ReadReplay(dir string, latent int) (*Replay, error) {
	if latent < 1 {
		return nil, fmt.Errorf("torchpeer: latent dimension %d, want >= 1", latent)
	}
	r := &Replay{Latent: latent}
	raw, err := os.ReadFile(filepath.Join(dir, "init.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &r.Params); err != nil {
		return nil, fmt.Errorf("torchpeer: init.json: %w", err)
	}
	init, err := readFloats[float32](filepath.Join(dir, "init.f32"))
	if err != nil {
		return nil, err
	}
	for i := range r.Params {
		p := &r.Params[i]
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		if n > len(init) {
			return nil, fmt.Errorf("torchpeer: init.f32 ends inside %s", p.Name)
		}
		p.Values, init = init[:n], init[n:]
	}
	if len(init) != 0 {
		return nil, fmt.Errorf("torchpeer: init.f32 has %d values beyond the manifest's", len(init))
	}
	if r.TrainX, err = os.ReadFile(filepath.Join(dir, "train_x.bits")); err != nil {
		return nil, err
	}
	if r.TestX, err = os.ReadFile(filepath.Join(dir, "test_x.bits")); err != nil {
		return nil, err
	}
	if r.TrainEps, err = readFloats[float32](filepath.Join(dir, "train_eps.f32")); err != nil {
		return nil, err
	}
	if r.TestEps, err = readFloats[float32](filepath.Join(dir, "test_eps.f32")); err != nil {
		return nil, err
	}
	if r.StepLoss, err = readFloats[float64](filepath.Join(dir, "step_loss.f64")); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "log_px.f64")); err == nil {
		if r.LogPx, err = readFloats[float64](filepath.Join(dir, "log_px.f64")); err != nil {
			return nil, err
		}
	}
	switch {
	case len(r.TrainX)%PackedRow != 0 || len(r.TestX)%PackedRow != 0:
		return nil, fmt.Errorf("torchpeer: image files of %d and %d bytes, not whole rows of %d", len(r.TrainX), len(r.TestX), PackedRow)
	case len(r.TrainEps) != r.TrainRows()*latent:
		return nil, fmt.Errorf("torchpeer: %d training noise values for %d rows of %d", len(r.TrainEps), r.TrainRows(), latent)
	case len(r.TestEps)%(r.TestRows()*latent) != 0 && r.TestRows() > 0:
		return nil, fmt.Errorf("torchpeer: %d evaluation noise values, not whole epochs of %d rows of %d", len(r.TestEps), r.TestRows(), latent)
	}
	return r, nil
}

// TrainRows and TestRows count the recorded training rows (over all
// steps) and test images.
func (r *Replay) TrainRows() int { return len(r.TrainX) / PackedRow }
func (r *Replay) TestRows() int  { return len(r.TestX) / PackedRow }

// Unpack writes the 0/1 pixels of packed rows (PackedRow bytes each) into
// dst, Pixels values a row.
func Unpack(packed []byte, dst []float32) {
	for i, b := range packed {
		for k := range 8 {
			dst[i*8+k] = float32(b >> (7 - k) & 1)
		}
	}
}

// readFloats reads a file of little-endian float32s or float64s.
func readFloats[T float32 | float64](path string) ([]T, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	size := binary.Size(T(0))
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("torchpeer: %s has %d bytes, not whole %d-byte floats", filepath.Base(path), len(raw), size)
	}
	v := make([]T, len(raw)/size)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, v); err != nil {
		return nil, fmt.Errorf("torchpeer: %s: %w", filepath.Base(path), err)
	}
	return v, nil
}
