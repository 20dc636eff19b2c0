//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

// TestKill9ResumeLosesNoMoreThanSaveInterval trains in a subprocess, kills
// it with SIGKILL at seeded random moments (some mid-save), resumes each
// time with -resume, and requires at every kill a checkpoint no older than
// the save interval, and at the end a loadable model with every step done
// once, metrics.jsonl holding each epoch once, no temporary files, and the
// very weights of an uninterrupted run.
func TestKill9ResumeLosesNoMoreThanSaveInterval(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 400, 50); err != nil {
		t.Fatal(err)
	}
	// 360 training images in batches of 8: 45 steps an epoch, 180 in all.
	const (
		every, perEpoch, epochs = 7, 45, 4
		total                   = perEpoch * epochs
	)
	flags := func(out string) []string {
		return []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", out,
			"-hidden", "16", "-latent", "2", "-batch", "8", "-val", "40", "-epochs", strconv.Itoa(epochs),
			"-save-every", strconv.Itoa(every), "-keep", "2", "-log-every", "1"}
	}

	plain := t.TempDir()
	if b, err := exec.Command(bin, flags(plain)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, b)
	}

	out := t.TempDir()
	rng := rand.New(rand.NewPCG(2024, 9))
	const kills = 5
	// The process can run at most pipeLag steps ahead of the lines read
	// (see runAndKill), so a kill after step maxTarget lands before the end.
	const maxTarget = total - pipeLag - 10
	resumed := int64(0)
	for kill := range kills {
		args := flags(out)
		if kill > 0 {
			args = append(args, "-resume")
		}
		// One kill in each fifth of the run, after a random step past the
		// one resumed from (the first after the first save, so that there
		// is something to resume) and a random pause of up to 5 ms, to land
		// anywhere in what follows: a step, an evaluation, a save.
		lo := max(resumed+1, every+1+int64(kill)*(maxTarget-every)/kills)
		hi := max(lo+1, every+1+int64(kill+1)*(maxTarget-every)/kills)
		if lo > maxTarget {
			t.Logf("kill %d skipped: the previous one landed at step %d", kill+1, resumed)
			break
		}
		target := lo + rng.Int64N(hi-lo)
		pause := time.Duration(rng.IntN(5000)) * time.Microsecond
		seen, err := runAndKill(bin, args, target, pause)
		if err != nil {
			t.Fatalf("kill %d: %v", kill+1, err)
		}
		// A step's log line comes before its save, so every save point
		// before the last step seen has been written.
		wantAtLeast := max((seen-1)/every*every, (seen-1)/perEpoch*perEpoch)
		_, _, st, err := checkpoints.Inspect(filepath.Join(out, "model.safetensors"))
		if err != nil {
			t.Fatalf("kill %d after step %d: %v", kill+1, seen, err)
		}
		t.Logf("kill %d: saw step %d, killed %v later; model.safetensors holds step %d", kill+1, seen, pause, st.Step)
		if st.Step < wantAtLeast {
			t.Fatalf("kill %d after step %d: model.safetensors holds step %d, want at least %d (-save-every %d)", kill+1, seen, st.Step, wantAtLeast, every)
		}
		resumed = st.Step
	}
	b, err := exec.Command(bin, append(flags(out), "-resume")...).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "done: 4 epochs, 180 steps") {
		t.Fatalf("final resume: %v\n%s", err, b)
	}

	m, err := checkpoints.Load(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, st, err := checkpoints.Inspect(filepath.Join(out, "model.safetensors"))
	if err != nil || st.Step != total || st.Epoch != epochs || st.Batch != 0 {
		t.Fatalf("final state %+v (%v), want step %d at the end of epoch %d", st, err, total, epochs)
	}
	ref, err := checkpoints.Load(filepath.Join(plain, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params().All() {
		if !slices.Equal(p.Float32s(), ref.Params().All()[i].Float32s()) {
			t.Fatalf("parameter %s differs from the uninterrupted run's", p.Name)
		}
	}
	if got := metricsEpochs(t, out); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("metrics.jsonl holds epochs %v, want 1 to 4 once each", got)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	// The last two saves: step 175 (25 x 7) and the end of epoch 4.
	for _, f := range []string{"ckpt-step000000175.safetensors", "ckpt-step000000180.safetensors"} {
		if !slices.Contains(names, f) {
			t.Errorf("%s missing; the run directory holds %v", f, names)
		}
	}
}

// pipeLag bounds how many steps the process can run ahead of the test:
// its stdout pipe holds one page (4096 bytes), and each step writes a log
// line of some 80 bytes (70 at the least), so beyond that the process
// blocks until we read.
const pipeLag = 4096/70 + 1

// runAndKill runs bin and sends SIGKILL pause after it logs step target. It
// returns the last step logged before the kill.
func runAndKill(bin string, args []string, target int64, pause time.Duration) (int64, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), fSetPipeSize, 4096); errno != 0 {
		w.Close()
		return 0, fmt.Errorf("shrinking the pipe: %v", errno)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, err
	}
	var last int64
	killed := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "step ")
		if !ok || killed {
			continue
		}
		n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ' ')], 10, 64)
		if err != nil {
			continue
		}
		last = n
		if n >= target {
			time.Sleep(pause)
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		return 0, fmt.Errorf("the run ended (%v) before step %d:\n%s", err, target, &stderr)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return 0, fmt.Errorf("want death by SIGKILL, got %v:\n%s", err, &stderr)
	}
	return last, nil
}

// fSetPipeSize is Linux's F_SETPIPE_SZ, which package syscall lacks.
const fSetPipeSize = 1031

// metricsEpochs lists the epoch of each line of metrics.jsonl.
func metricsEpochs(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int
	var lastStep int64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m struct {
			Epoch int    `json:"epoch"`
			Kind  string `json:"kind"`
			Step  int64  `json:"step"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", line, err)
		}
		if m.Kind == "step" { // -log-every lines: each step once, in order
			if m.Step != lastStep+1 {
				t.Errorf("metrics.jsonl: step line %d after step %d", m.Step, lastStep)
			}
			lastStep = m.Step
			continue
		}
		epochs = append(epochs, m.Epoch)
	}
	return epochs
}
