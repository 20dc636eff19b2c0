package main

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/internal/testutil"
)

// dataRoot is the folder holding mnist/ (and fashion-mnist/): $GOVAE_DATA,
// else ../shared/data beside the repository, as CI and the runner use.
func dataRoot(t *testing.T) string {
	t.Helper()
	root := os.Getenv("GOVAE_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "data")
	}
	if st, err := os.Stat(filepath.Join(root, "mnist")); err != nil || !st.IsDir() {
		testutil.SkipNoData(t, fmt.Sprintf("no MNIST in %s/mnist (set $GOVAE_DATA to the folder holding mnist/ and fashion-mnist/): the quick runs need real images", root))
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestQuickRuns runs each of these experiments through realMain with
// -quick, as CI does, and checks what they write: README.md with the
// provenance header, every figure it links as a valid PNG, and tables whose
// numbers are all finite.
func TestQuickRuns(t *testing.T) {
	root := dataRoot(t)
	t.Setenv("GOVAE_OFFLINE", "1") // never download in a test
	for _, name := range []string{"posteriors", "objectives", "estimators", "gap", "burda", "vigmm", "priors", "conv", "convpeer"} {
		t.Run(name, func(t *testing.T) {
			if name == "posteriors" || name == "vigmm" || name == "priors" || name == "conv" {
				if _, err := os.Stat(filepath.Join(root, "fashion-mnist")); err != nil {
					t.Skipf("no Fashion-MNIST in %s/fashion-mnist", root)
				}
			}
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			start := time.Now()
			if code := realMain([]string{"-run", name, "-quick", "-out", out, "-data", root}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
			}
			t.Logf("%s -quick: %.1fs", name, time.Since(start).Seconds())
			checkResult(t, out)
		})
	}
}

var figureLink = regexp.MustCompile(`!\[[^\]]*\]\(([^)]+\.png)\)`)

// checkResult checks an experiment's output directory.
func checkResult(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, want := range []string{"- Command: `go run ./experiments", "- Git revision:", "- Data:", "- Machine:", "- Wall time:", "## Reading the results"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	figs := figureLink.FindAllStringSubmatch(readme, -1)
	if len(figs) == 0 {
		t.Error("README.md links no figure")
	}
	for _, f := range figs {
		fh, err := os.Open(filepath.Join(dir, f[1]))
		if err != nil {
			t.Errorf("figure: %v", err)
			continue
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("figure %s: not a drawn PNG (%v)", f[1], err)
		}
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(readme, bad) {
			t.Errorf("README.md contains %q", bad)
		}
	}
	rows, numbers := 0, 0
	for _, line := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "| ---") {
			continue
		}
		rows++
		for _, cell := range strings.Split(strings.Trim(line, "|"), "|") {
			for _, field := range strings.Fields(strings.NewReplacer("±", " ", "%", " ", "+", " ").Replace(cell)) {
				v, err := strconv.ParseFloat(field, 64)
				if err != nil {
					continue
				}
				numbers++
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("table cell %q is not finite", cell)
				}
			}
		}
	}
	if rows < 3 || numbers < 10 {
		t.Errorf("README.md has %d table rows with %d numbers; want tables of results", rows, numbers)
	}
}

func TestHelpers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -5000: "-5,000"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
	if got := plural(1, "epoch") + ", " + plural(20, "epoch"); got != "1 epoch, 20 epochs" {
		t.Errorf("plural: %q", got)
	}
	for _, tc := range []struct {
		n, k int
		want []int
	}{{3, 5, []int{0, 1, 2}}, {21, 5, []int{0, 5, 10, 15, 20}}, {6, 5, []int{0, 1, 3, 4, 5}}} {
		if got := pickIndices(tc.n, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("pickIndices(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
	// a - b = {1, 3}: mean 2, sd sqrt(2), standard error 1.
	if se := pairedSE([]float64{2, 5}, []float64{1, 2}); math.Abs(se-1) > 1e-12 {
		t.Errorf("pairedSE = %v, want 1", se)
	}
	if se := stdErr([]float64{1, 3}); math.Abs(se-1) > 1e-12 {
		t.Errorf("stdErr = %v, want 1", se)
	}
	tab := newTable("a", "b")
	tab.add("x|y", "1")
	if got, want := tab.String(), "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"; got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}
