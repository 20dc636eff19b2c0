package main

// Checkpoints of the burda experiment: the paper's whole schedule (3,280
// passes) takes hours here, longer than one working session on a shared
// machine, so each row saves its whole training state and continues from
// it exactly when the experiment is run again with the same -out.
//
// A row's file, checkpoints/<row>.safetensors in -out, is a cmd/train
// checkpoint (package checkpoints: the weights, Adam's moments and the
// trainer's counters, written to a temporary file, synced and renamed), so
// cmd/eval and cmd/inspect read it. Its training state's run description
// holds what the experiment adds: the row's settings, the learning curve,
// the training time, the segments (one per process that trained the row)
// and, once the row is done, its evaluation. Every random draw of training
// is a function of the seed and the step or epoch (amortized's streams, the
// loader's order and binarization), so that state is all a resumed run needs
// to be the same, bit for bit, as one run straight through.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/run/evalrun"
	"github.com/govae/govae/internal/run/runinfo"
	"github.com/govae/govae/internal/run/trainrun"
)

// burdaLastStage is the paper's last stage (3,280 passes in all).
const burdaLastStage = 7

// burdaCheckpointDir is the checkpoints' folder inside -out.
const burdaCheckpointDir = "checkpoints"

// burdaSettings are what a checkpoint must share with the run that
// continues it. The schedule is not among them: every schedule is a prefix
// of the paper's, so a longer one (-stages) continues a shorter one's row.
type burdaSettings struct {
	Row         string          `json:"row"`
	Objective   string          `json:"objective"`
	K           int             `json:"k"`
	Seed        uint64          `json:"seed"`
	Batch       int             `json:"batch"`
	TrainImages int             `json:"train_images"`
	Model       json.RawMessage `json:"model"` // the model's configuration
}

// burdaSegment is one process's share of a row's training.
type burdaSegment struct {
	Revision  string  `json:"revision"`
	Started   string  `json:"started"` // UTC, RFC 3339
	FromEpoch int     `json:"from_epoch"`
	FromBatch int     `json:"from_batch"`
	ToEpoch   int     `json:"to_epoch"` // where its last save left the row
	ToBatch   int     `json:"to_batch"`
	Seconds   float64 `json:"seconds"` // wall time from its start to its last save
}

// burdaResult is a trained row's evaluation, kept so that a rerun reports
// it without training or evaluating again.
type burdaResult struct {
	Step       int64       `json:"step"` // of the evaluated weights
	Revision   string      `json:"revision"`
	Stopped    bool        `json:"stopped"` // by the budget
	Budget     float64     `json:"budget_seconds"`
	Evaluation *evaluation `json:"evaluation"`
	PerLayer   []int       `json:"active_per_layer"`
}

// burdaRun is the run description a row's checkpoint carries.
type burdaRun struct {
	Settings     burdaSettings  `json:"settings"`
	MaxStage     int            `json:"max_stage"` // of the schedule the last segment ran
	Curve        []epochPoint   `json:"curve"`
	TrainSeconds float64        `json:"train_seconds"`
	Images       int            `json:"images"`
	Segments     []burdaSegment `json:"segments"`
	Result       *burdaResult   `json:"result,omitempty"`
	// Reused: this process took the result from the checkpoint (not saved).
	Reused bool `json:"-"`
}

// Revisions are the git revisions that trained or evaluated the row, in order.
func (r *burdaRun) Revisions() []string {
	var revs []string
	for _, s := range r.Segments {
		if !slices.Contains(revs, s.Revision) {
			revs = append(revs, s.Revision)
		}
	}
	if r.Result != nil && !slices.Contains(revs, r.Result.Revision) {
		revs = append(revs, r.Result.Revision)
	}
	return revs
}

// burdaCheckpoints is the checkpoints folder of a run, locked while in use.
type burdaCheckpoints struct {
	dir     string
	release func()
}

// openBurdaCheckpoints creates and locks -out's checkpoints folder, with a
// .gitignore that keeps the files (5 MB a one-layer row) out of commits.
func openBurdaCheckpoints(e *env) (*burdaCheckpoints, error) {
	dir := filepath.Join(e.Out, burdaCheckpointDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, ".gitignore"), []byte("# training state of unfinished runs, not results\n*\n")); err != nil {
		return nil, err
	}
	release, note, err := trainrun.LockDir(dir)
	if err != nil {
		return nil, err
	}
	if note != nil {
		e.Logf("burda: %v", note)
	}
	// Temporary files of saves that a kill -9 cut short (see internal/atomicfile).
	stale, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
	return &burdaCheckpoints{dir: dir, release: release}, nil
}

// burdaFileName is a row's checkpoint file: "two layers, IWAE, k = 5" is
// two-layers-iwae-k-5.safetensors.
func burdaFileName(row string) string {
	f := strings.FieldsFunc(strings.ToLower(row), func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') })
	return strings.Join(f, "-") + ".safetensors"
}

// checkRevision refuses to continue or reuse a checkpoint that code other
// than this commit wrote, unless -any-revision.
func checkRevision(e *env, path string, run *burdaRun) error {
	if e.AnyRevision {
		return nil
	}
	if strings.Contains(e.Rev, " ") || strings.HasPrefix(e.Rev, "unknown") {
		return fmt.Errorf("%s holds a checkpoint, but this tree's revision is %q: nothing can tell that its code wrote it; "+
			"run from a clean checkout of a commit, or pass -any-revision", path, e.Rev)
	}
	for _, rev := range run.Revisions() {
		if rev != e.Rev {
			return fmt.Errorf("%s was written by revision %s, this is %s: a result must come from one committed code, so "+
				"run that revision (git worktree add --detach DIR %.12s), or pass -any-revision to mix them, or delete the file to start the row over",
				path, rev, e.Rev, rev)
		}
	}
	return nil
}

// loadBurdaRow reads a row's checkpoint; all nil when there is none.
func loadBurdaRow(path string) (*amortized.Model, *amortized.TrainState, *burdaRun, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, nil
	}
	m, st, err := checkpoints.LoadTraining(path)
	if err != nil {
		return nil, nil, nil, err
	}
	run := &burdaRun{}
	if err := json.Unmarshal(st.Run, run); err != nil || run.Settings.Row == "" {
		return nil, nil, nil, fmt.Errorf("%s: not a checkpoint of the burda experiment (its run description: %v)", path, err)
	}
	return m, st, run, nil
}

// saveBurdaRow writes m, st and run to path, atomically.
func saveBurdaRow(path string, m *amortized.Model, st amortized.TrainState, run *burdaRun, d *checkpoints.Data) error {
	js, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encoding the run description: %w", err)
	}
	st.Run = js
	return checkpoints.SaveWithData(path, m, &st, d)
}

// runRow trains (or continues, or reuses) one row of the table and evaluates it.
func (c *burdaCheckpoints) runRow(ctx context.Context, e *env, sz burdaSize, ds *dataset, name, objective string, k int, twoLayers bool,
	schedule []lrStage) (burdaRow, error) {
	label := "burda: " + name
	opts := amortized.TrainOptions{Objective: objective, K: k, AdamEps: 1e-4}
	cfg := burdaConfig(ds)
	if twoLayers {
		cfg = burdaTwoLayerConfig(ds)
	}
	fresh, err := burdaModel(ds, cfg, e.Seed)
	if err != nil {
		return burdaRow{}, err
	}
	mc, err := json.Marshal(fresh.Config())
	if err != nil {
		return burdaRow{}, err
	}
	settings := burdaSettings{Row: name, Objective: objective, K: k, Seed: e.Seed, Batch: batchSize, TrainImages: len(ds.TrainIdx), Model: mc}
	passes := 0
	for _, s := range schedule {
		passes += s.Epochs
	}

	path := filepath.Join(c.dir, burdaFileName(name))
	m, st, run, err := loadBurdaRow(path)
	if err != nil {
		return burdaRow{}, err
	}
	if run == nil {
		m, run = fresh, &burdaRun{Settings: settings}
	} else {
		if err := checkRevision(e, path, run); err != nil {
			return burdaRow{}, err
		}
		saved, err1 := json.Marshal(run.Settings)
		want, err2 := json.Marshal(settings)
		if err := errors.Join(err1, err2); err != nil {
			return burdaRow{}, err
		}
		if string(saved) != string(want) {
			return burdaRow{}, fmt.Errorf("%s was trained with other settings (%s), this run's are %s: use another -out, or delete the file to start the row over",
				path, saved, want)
		}
		if st.Epoch > passes || st.Epoch == passes && st.Batch > 0 {
			return burdaRow{}, fmt.Errorf("%s is at epoch %d, past this schedule's %d (i = 0..%d): pass a larger -stages", path, st.Epoch, passes, sz.MaxStage)
		}
		e.Logf("%s: %s holds the row after %s of %d (step %d), %s s of training in %s",
			label, path, burdaAt(st.Epoch, st.Batch), passes, st.Step, secs(run.TrainSeconds), plural(len(run.Segments), "segment"))
	}
	out := &trained{Model: m, Curve: run.Curve, TrainSeconds: run.TrainSeconds, Images: run.Images}
	if st != nil {
		out.Steps = st.Step
	}
	trainedOn := &checkpoints.Data{Dataset: ds.Name, Dir: ds.Dir, Binarize: "dynamic", EvalSeed: runinfo.EvalBinarizeSeed,
		Rows: ds.Train.Rows, Cols: ds.Train.Cols, Channels: max(ds.Train.Channels, 1)}
	started := time.Now()
	seg := -1 // this process's segment in run.Segments, once it trains
	save := func(t *amortized.Trainer) error {
		if t.Model().Params().NonFinite() != "" {
			return nil // the last good state stays on disk
		}
		s := t.State()
		if seg < 0 {
			if st != nil && s.Epoch == st.Epoch && s.Batch == st.Batch {
				return nil // nothing trained yet
			}
			from := amortized.TrainState{}
			if st != nil {
				from = *st
			}
			run.Segments = append(run.Segments, burdaSegment{Revision: e.Rev, Started: started.UTC().Format(time.RFC3339), FromEpoch: from.Epoch, FromBatch: from.Batch})
			seg = len(run.Segments) - 1
		}
		g := &run.Segments[seg]
		g.ToEpoch, g.ToBatch, g.Seconds = s.Epoch, s.Batch, time.Since(started).Seconds()
		run.MaxStage, run.Curve, run.TrainSeconds, run.Images, run.Result = sz.MaxStage, out.Curve, out.TrainSeconds, out.Images, nil
		return saveBurdaRow(path, t.Model(), s, run, trainedOn)
	}
	end, err := trainSchedule(ctx, e, label, ds, out, opts, e.Seed, schedule, sz.Budget, st, save)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			e.Logf("%s: interrupted; the row's state is saved in %s: run the same command (same -out) to continue it", label, path)
		}
		return burdaRow{}, err
	}
	if out.Diverged != nil {
		return burdaRow{}, out.Diverged
	}
	res := run.Result
	if res != nil && (res.Step != end.Step || res.Evaluation.K != sz.K || res.Evaluation.N != len(ds.TestX) || res.Stopped != out.Stopped) {
		res = nil // evaluated at another step or size
	}
	if res != nil {
		run.Reused = true
		e.Logf("%s: done earlier (epoch %d, step %d): its evaluation by revision %.12s is kept in %s", label, end.Epoch, end.Step, res.Revision, path)
	} else {
		ev, err := evaluate(ctx, out.Model, ds, sz.K, nil, e.Seed)
		if err != nil {
			if ctx.Err() != nil {
				e.Logf("%s: interrupted while evaluating; the trained row is saved in %s: run the same command (same -out) to evaluate it", label, path)
			}
			return burdaRow{}, err
		}
		perLayer, err := evalrun.ActiveUnitsByLayer(out.Model, ds.TestX)
		if err != nil {
			return burdaRow{}, err
		}
		res = &burdaResult{Step: end.Step, Revision: e.Rev, Stopped: out.Stopped, Budget: sz.Budget.Seconds(), Evaluation: ev, PerLayer: perLayer}
		run.Result, run.MaxStage = res, sz.MaxStage
		if err := saveBurdaRow(path, out.Model, *end, run, trainedOn); err != nil {
			e.Logf("%s: keeping the evaluation in %s failed (a rerun evaluates again): %v", label, path, err)
		}
	}
	ev := res.Evaluation
	e.Logf("%s: log p(x) %.2f ± %.2f (k = %d), ELBO %.2f, active units %v", label, ev.LogPx, ev.LogPxSE, sz.K, ev.ELBO, res.PerLayer)
	return burdaRow{name: name, tr: out, ev: ev, perLayer: res.PerLayer, run: run}, nil
}

// burdaSegments describes how each row was trained: in how many segments
// (processes), by which revisions, for how long.
func burdaSegments(rows []burdaRow) string {
	var b strings.Builder
	b.WriteString("## Checkpoints and segments\n\n" +
		"Each row saves its whole training state (weights, Adam's moments and step, the epoch and batch, the curve, the training time) " +
		"in checkpoints/ beside this README (not committed) after every epoch and when interrupted; running the same command with the same -out " +
		"continues it exactly, and reports a finished row without training it again. A segment is one process's share of a row's training; " +
		"the training times above add up every segment, while the header's wall time is the last process's alone.\n\n")
	for _, r := range rows {
		run := r.run
		var segs []string
		for _, s := range run.Segments {
			segs = append(segs, fmt.Sprintf("from %s to %s, started %s (%s wall, revision %s)",
				burdaAt(s.FromEpoch, s.FromBatch), burdaAt(s.ToEpoch, s.ToBatch), s.Started,
				time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), shortRevs([]string{s.Revision})[0]))
		}
		how := "trained in one segment"
		if len(run.Segments) > 1 {
			how = fmt.Sprintf("**resumed**: trained in %d segments", len(run.Segments))
		}
		fmt.Fprintf(&b, "- %s: %s, %s s of training in all; revisions %s; evaluated by %s", r.name, how,
			secs(run.TrainSeconds), strings.Join(shortRevs(run.Revisions()), ", "), shortRevs([]string{run.Result.Revision})[0])
		if run.Reused {
			b.WriteString(" (in an earlier process; this one reported it from its checkpoint)")
		}
		if len(segs) > 0 {
			b.WriteString(":\n  " + strings.Join(segs, ";\n  "))
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// burdaAt names a point of training: epochs done and batches of the next.
func burdaAt(epoch, batch int) string {
	s := plural(epoch, "epoch")
	if batch > 0 {
		s += fmt.Sprintf(" + %d of the next's batches", batch)
	}
	return s
}

// shortRevs shortens full revisions to 12 digits, keeping any remark
// ("(with uncommitted changes)").
func shortRevs(revs []string) []string {
	s := make([]string, len(revs))
	for i, r := range revs {
		h, rest, _ := strings.Cut(r, " ")
		s[i] = strings.TrimSpace(h[:min(len(h), 12)] + " " + rest)
	}
	return s
}
