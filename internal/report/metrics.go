package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/govae/govae/internal/plotting"
)

// Epoch is an epoch line of metrics.jsonl (internal/run/trainrun writes them).
type Epoch struct {
	Epoch        int      `json:"epoch"`
	Step         int64    `json:"step"`
	TrainELBO    float64  `json:"train_elbo"`
	Recon        float64  `json:"recon"`
	KL           float64  `json:"kl"`
	ValELBO      *float64 `json:"val_elbo"`
	ValRecon     *float64 `json:"val_recon,omitempty"`
	ValKL        *float64 `json:"val_kl,omitempty"`
	TestELBO     float64  `json:"test_elbo"`
	TestRecon    float64  `json:"test_recon"`
	TestKL       float64  `json:"test_kl"`
	Beta         float64  `json:"beta"`
	ImagesPerSec float64  `json:"images_per_s"`
	Seconds      float64  `json:"seconds"`
	Best         bool     `json:"best"`
	Time         string   `json:"time"`
}

// StepKind is the "kind" of a per-step line; epoch lines have no kind.
const StepKind = "step"

// Step is a per-step line of metrics.jsonl (cmd/train -log-every N): the
// terms of one minibatch as trained, in nats per image.
type Step struct {
	Kind  string  `json:"kind"`
	Epoch int     `json:"epoch"`
	Step  int64   `json:"step"`
	ELBO  float64 `json:"elbo"`
	Recon float64 `json:"recon"`
	KL    float64 `json:"kl"`
	Beta  float64 `json:"beta"`
	Loss  float64 `json:"loss"`
	// Bound is the batch's objective estimate: the ELBO, or the IWAE bound.
	Bound float64 `json:"bound,omitempty"`
}

// Metrics is a run's metrics.jsonl: epochs sorted by epoch (a later line
// for an epoch replaces an earlier one, as after a resume) and steps sorted
// by step.
type Metrics struct {
	Name   string // a short name for legends: the run directory's name
	Epochs []Epoch
	Steps  []Step
}

// HasVal reports whether the epochs have validation terms (else the
// held-out terms are the test set's).
func (m Metrics) HasVal() bool { return len(m.Epochs) > 0 && m.Epochs[0].ValELBO != nil }

// ReadMetrics reads a metrics.jsonl. Every epoch line must have the fields
// the curves need, and the validation terms must be on all epoch lines or
// none. Errors name the file and line.
func ReadMetrics(path string) (Metrics, error) {
	m := Metrics{Name: runName(path)}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	bad := func(line int, why string) error {
		return fmt.Errorf("%s: line %d: %s; want a metrics.jsonl from cmd/train (one JSON object per epoch with epoch, train_elbo, recon, kl, ...)", path, line, why)
	}
	required := []string{"epoch", "train_elbo", "recon", "kl", "val_elbo", "test_elbo", "test_recon", "test_kl"}
	byEpoch := map[int]Epoch{}
	bySteps := map[int64]Step{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line, withVal := 0, -1
	for sc.Scan() {
		line++
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &fields); err != nil {
			return m, bad(line, "not a JSON object")
		}
		if k, ok := fields["kind"]; ok {
			var s Step
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				return m, bad(line, err.Error())
			}
			if s.Kind != StepKind {
				return m, bad(line, fmt.Sprintf("kind %s, want %q", k, StepKind))
			}
			for _, k := range []string{"step", "elbo"} {
				if _, ok := fields[k]; !ok {
					return m, bad(line, fmt.Sprintf("a step line without %q", k))
				}
			}
			bySteps[s.Step] = s
			continue
		}
		for _, k := range required {
			if _, ok := fields[k]; !ok {
				return m, bad(line, fmt.Sprintf("no %q field", k))
			}
		}
		var e Epoch
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return m, bad(line, err.Error())
		}
		if e.Epoch < 1 {
			return m, bad(line, fmt.Sprintf("epoch %d", e.Epoch))
		}
		hasVal := e.ValELBO != nil && e.ValRecon != nil && e.ValKL != nil
		if withVal >= 0 && hasVal != (withVal == 1) {
			return m, bad(line, "validation terms on some lines only")
		}
		withVal = 0
		if hasVal {
			withVal = 1
		}
		byEpoch[e.Epoch] = e
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	if len(byEpoch) == 0 {
		return m, errors.New(path + ": no epochs; want a metrics.jsonl from cmd/train")
	}
	for _, e := range byEpoch {
		m.Epochs = append(m.Epochs, e)
	}
	slices.SortFunc(m.Epochs, func(a, b Epoch) int { return a.Epoch - b.Epoch })
	for _, s := range bySteps {
		m.Steps = append(m.Steps, s)
	}
	slices.SortFunc(m.Steps, func(a, b Step) int { return int(a.Step - b.Step) })
	return m, nil
}

// runName is the folder of a metrics file, or its base name without
// extension when that is not metrics.jsonl.
func runName(path string) string {
	base := filepath.Base(path)
	if base == "metrics.jsonl" {
		if d := filepath.Base(filepath.Dir(path)); d != "." && d != string(filepath.Separator) {
			return d
		}
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Curves returns the panels of training curves of runs: ELBO, reconstruction
// and KL against epoch, train and held-out. One run: the series are "train"
// and the held-out set, with per-step terms (when present) as a thin line at
// fractional epochs. Several runs: one colour per run, held-out curves only
// (the train curves of several runs crowd the panels), named by run.
func Curves(runs []Metrics) plotting.Panels {
	type term struct {
		title    string
		train    func(Epoch) float64
		held     func(Epoch) float64
		step     func(Step) float64
		heldName string
	}
	terms := []term{
		{"ELBO", func(e Epoch) float64 { return e.TrainELBO }, func(e Epoch) float64 { return pick(e.ValELBO, e.TestELBO) }, func(s Step) float64 { return s.ELBO }, ""},
		{"Reconstruction E_q[log p(x|z)]", func(e Epoch) float64 { return e.Recon }, func(e Epoch) float64 { return pick(e.ValRecon, e.TestRecon) }, func(s Step) float64 { return s.Recon }, ""},
		{"KL(q(z|x) || p(z))", func(e Epoch) float64 { return e.KL }, func(e Epoch) float64 { return pick(e.ValKL, e.TestKL) }, func(s Step) float64 { return s.KL }, ""},
	}
	var ps plotting.Panels
	for _, tm := range terms {
		pn := plotting.Panel{Title: tm.title, XLabel: "epoch", YLabel: "nats per image"}
		for _, r := range runs {
			held := "validation"
			if !r.HasVal() {
				held = "test (no validation set)"
			}
			series := func(name string, f func(Epoch) float64) plotting.Series {
				s := plotting.Series{Name: name}
				for _, e := range r.Epochs {
					s.X = append(s.X, float64(e.Epoch))
					s.Y = append(s.Y, f(e))
				}
				return s
			}
			if len(runs) > 1 {
				pn.Series = append(pn.Series, series(r.Name+" ("+strings.Fields(held)[0]+")", tm.held))
				continue
			}
			if st := stepSeries(r, tm.step); len(st.X) > 0 {
				pn.Series = append(pn.Series, st)
			}
			pn.Series = append(pn.Series, series("train", tm.train), series(held, tm.held))
		}
		ps.Panels = append(ps.Panels, pn)
	}
	return ps
}

// stepSeries places step s of epoch e at e-1 + (s - s0)/(s1 - s0), where s0
// and s1 are the steps at the end of epochs e-1 and e (from the epoch
// lines), so that the minibatch curve lines up with the epoch points.
func stepSeries(r Metrics, f func(Step) float64) plotting.Series {
	end := map[int]int64{0: 0}
	for _, e := range r.Epochs {
		end[e.Epoch] = e.Step
	}
	s := plotting.Series{Name: "train, per step", Thin: true}
	for _, st := range r.Steps {
		s0, ok0 := end[st.Epoch-1]
		s1, ok1 := end[st.Epoch]
		x := float64(st.Epoch - 1)
		if ok0 && ok1 && s1 > s0 {
			x += float64(st.Step-s0) / float64(s1-s0)
		} else {
			continue // an epoch not finished (or its line lost): no scale for it
		}
		s.X = append(s.X, x)
		s.Y = append(s.Y, f(st))
	}
	return s
}

func pick(v *float64, def float64) float64 {
	if v != nil {
		return *v
	}
	return def
}
