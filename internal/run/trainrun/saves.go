package trainrun

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
)

// Kept copies are named by their step, zero-padded so that ls lists them in
// order; nine digits last a billion steps.
const (
	keptPrefix = "ckpt-step"
	keptSuffix = ".safetensors"
)

// KeptFile is the name of the kept copy of the checkpoint saved at step.
func KeptFile(step int64) string { return fmt.Sprintf("%s%09d%s", keptPrefix, step, keptSuffix) }

// keptStep parses a KeptFile name.
func keptStep(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, keptPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, keptSuffix); !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n >= 0
}

// keptFiles lists the kept copies in dir by step, oldest first.
func keptFiles(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var steps []int64
	for _, e := range entries {
		if s, ok := keptStep(e.Name()); ok && e.Type().IsRegular() {
			steps = append(steps, s)
		}
	}
	slices.Sort(steps)
	return steps, nil
}

// dropKeptAfter removes kept copies newer than step: after a resume or a
// rollback they belong to an abandoned future, and would otherwise count as
// the most recent and push out the copies of the run that goes on.
func dropKeptAfter(dir string, step int64) error {
	steps, err := keptFiles(dir)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s > step {
			if err := os.Remove(filepath.Join(dir, KeptFile(s))); err != nil {
				return err
			}
		}
	}
	return nil
}

// saver writes the resumable checkpoint, decides when a mid-epoch save is
// due, and keeps the last few copies.
type saver struct {
	dir      string
	steps    int64         // save every this many steps; 0: not by steps
	interval time.Duration // save when this long has passed; 0: not by time
	keep     int
	data     *checkpoints.Data // what the model is trained on, recorded in every file
	last     time.Time         // of the last save, or of the start
	step     int64             // of the state in model.safetensors; -1: none
	aside    *aside            // a previous run -force replaces, deleted at the first save
}

// due reports whether a mid-epoch save is due after step.
func (s *saver) due(step int64) bool {
	return (s.steps > 0 && step%s.steps == 0) || (s.interval > 0 && time.Since(s.last) >= s.interval)
}

// save writes model.safetensors and, with keep > 0, a copy named by the
// step, then deletes copies beyond the keep most recent. epoch is the
// 1-based epoch the state belongs to, for the error if the weights are not
// finite: such weights are never saved, so model.safetensors is always a
// checkpoint worth going back to.
func (s *saver) save(m *amortized.Model, st amortized.TrainState, epoch int) error {
	if err := checkFinite(m, epoch, st.Step); err != nil {
		return err
	}
	if err := checkpoints.SaveWithData(filepath.Join(s.dir, LatestFile), m, &st, s.data); err != nil {
		return s.failed(err)
	}
	s.last, s.step = time.Now(), st.Step
	if s.aside != nil {
		if err := s.aside.discard(); err != nil {
			return fmt.Errorf("-force: deleting the previous run: %w", err)
		}
		s.aside = nil
	}
	if s.keep == 0 {
		return nil
	}
	// A second encoding rather than a hard link: the copy must survive
	// whatever later happens to model.safetensors, on any file system.
	if err := checkpoints.SaveWithData(filepath.Join(s.dir, KeptFile(st.Step)), m, &st, s.data); err != nil {
		return fmt.Errorf("%w; %s (step %d) is saved", err, LatestFile, st.Step)
	}
	steps, err := keptFiles(s.dir)
	if err != nil {
		return err
	}
	for _, old := range steps[:max(len(steps)-s.keep, 0)] {
		if err := os.Remove(filepath.Join(s.dir, KeptFile(old))); err != nil {
			return err
		}
	}
	return nil
}

// failed describes a failed save of model.safetensors: the write is
// atomic, so the previous checkpoint is still there (a full disk is the
// usual cause).
func (s *saver) failed(err error) error {
	if s.step < 0 {
		return fmt.Errorf("%w; no checkpoint of this run was saved yet", err)
	}
	return fmt.Errorf("%w; the previous checkpoint (step %d) is kept unchanged in %s", err, s.step, filepath.Join(s.dir, LatestFile))
}

// checkFinite returns a *amortized.NonFiniteError naming the first parameter
// holding a NaN or an infinity.
func checkFinite(m *amortized.Model, epoch int, step int64) error {
	if name := m.Params().NonFinite(); name != "" {
		return &amortized.NonFiniteError{Epoch: epoch, Step: step, What: "parameter " + name}
	}
	return nil
}

func nonFinite(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// removeStaleTemps deletes the temporary files of writes that a crash (kill
// -9, power loss) interrupted before their rename; see internal/atomicfile.
func removeStaleTemps(dir string) error {
	return removeMatching(dir, ".*.tmp-*")
}

// removeMatching deletes the files in dir whose names match any of the
// patterns (as in path.Match; dir itself may hold metacharacters).
func removeMatching(dir string, patterns ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, e.Name()); ok && !e.IsDir() {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}
