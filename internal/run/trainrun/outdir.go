package trainrun

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/govae/govae/internal/report"
)

// runPatterns match every file a run writes into its directory: any of
// them means the directory holds a run (a full disk can leave best and
// metrics without model.safetensors).
var runPatterns = []string{LatestFile, BestFile, MetricsFile, keptPrefix + "*" + keptSuffix, "samples-e*.png", "recon-e*.png", report.IndexFile, report.CommandFile}

// asideDir is where -force moves the previous run until the new run has
// saved its first checkpoint.
const asideDir = ".replaced-by-force"

// runFiles lists the names of dir's entries that belong to a run, sorted.
func runFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		for _, pat := range runPatterns {
			if ok, _ := path.Match(pat, e.Name()); ok {
				names = append(names, e.Name())
				break
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// aside is a previous run moved out of the way by -force.
type aside struct {
	dir   string // the run directory
	names []string
}

// moveAside moves the run files of dir into dir/asideDir.
func moveAside(dir string) (*aside, error) {
	names, err := runFiles(dir)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	ad := filepath.Join(dir, asideDir)
	if err := os.Mkdir(ad, 0o755); err != nil {
		return nil, fmt.Errorf("-force: moving the previous run aside: %w", err)
	}
	a := &aside{dir: dir}
	for _, n := range names {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(ad, n)); err != nil {
			if rerr := a.restore(false); rerr != nil {
				return nil, fmt.Errorf("-force: moving the previous run aside: %w; putting it back: %v (its files are in %s)", err, rerr, ad)
			}
			return nil, fmt.Errorf("-force: moving the previous run aside: %w", err)
		}
		a.names = append(a.names, n)
	}
	syncDir(dir)
	return a, nil
}

// restore moves the previous run back; with removeNew it first deletes
// what the new run wrote.
func (a *aside) restore(removeNew bool) error {
	ad := filepath.Join(a.dir, asideDir)
	names, err := runFiles(ad)
	if err != nil {
		return err
	}
	var errs []error
	if removeNew {
		if err := removeMatching(a.dir, runPatterns...); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(ad, n), filepath.Join(a.dir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, os.Remove(ad))
	}
	syncDir(a.dir)
	return errors.Join(errs...)
}

// discard deletes the previous run for good.
func (a *aside) discard() error {
	return os.RemoveAll(filepath.Join(a.dir, asideDir))
}

// recoverAside finishes a -force that a crash interrupted: once the new
// run has a checkpoint the previous one goes, else the previous one comes
// back (with what little the new run wrote deleted).
func recoverAside(dir string, out io.Writer) error {
	ad := filepath.Join(dir, asideDir)
	if _, err := os.Stat(ad); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	a := &aside{dir: dir}
	if _, err := os.Stat(filepath.Join(dir, LatestFile)); err == nil {
		fmt.Fprintf(out, "note: deleting %s, the run that an interrupted -force replaced (the new run had saved its first checkpoint)\n", ad)
		return a.discard()
	}
	fmt.Fprintf(out, "note: -force was interrupted before the new run saved a checkpoint; the previous run is back in %s\n", dir)
	return a.restore(true)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func hasAside(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, asideDir))
	return err == nil
}

// describePathError says in words what the usual errors of a path mean
// ("file exists" for a symbolic link loop tells nobody anything).
func describePathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is a loop of symbolic links (following them never reaches a file or folder); remove the link or pick another path: %w", pe.Path, err)
	}
	return err
}
