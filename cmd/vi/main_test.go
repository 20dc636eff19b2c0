package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInput(t *testing.T) {
	good := write(t, "g.csv", "x\n1\n2\n3\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gmm", "-data", write(t, "e.csv", "")}, "empty file"},
		{[]string{"vbgmm", "-data", write(t, "r.csv", "a,b\n1,2\n3\n")}, "row 3 has 1 columns, the header has 2"},
		{[]string{"vbgmm", "-data", write(t, "n.csv", "a,b\n1,2\n3,abc\n")}, `row 3, column 2 (b): "abc" is not a number`},
		{[]string{"gmm", "-data", write(t, "nan.csv", "x\n1\nNaN\n")}, "row 3, column 1 (x): NaN"},
		{[]string{"gmm", "-data", good, "-k", "4"}, "-k 4: " + good + " has only 3 rows"},
		{[]string{"gmm", "-data", good, "-k", "0"}, "-k 0, want 1 to 1000"},
		{[]string{"gmm", "-data", good, "-method", "advi"}, `-method "advi", want one of cavi, svi`},
		{[]string{"gmm"}, "-data FILE.csv is required"},
		{[]string{"nope", "-data", good}, `unknown model "nope"`},
		{[]string{"gmm", "-data", filepath.Join(t.TempDir(), "missing.csv")}, "no such file"},
		{[]string{"gmm", "-data", write(t, "two.csv", "a,b\n1,2\n3,4\n"), "-k", "1"}, "gmm models one column"},
		{[]string{"logistic", "-data", write(t, "l.csv", "x,y\n1,0\n2,3\n")}, "row 3: target 3, want 0 or 1"},
		{[]string{"logistic", "-data", good, "-method", "advi", "-family", "x"}, `-family "x"`},
		{[]string{"bnn", "-data", good, "-hidden", "100000"}, "-hidden 100000, want 1 to 1000"},
		{[]string{"blr", "-data", write(t, "b.csv", "x,y\n1,2\n2,3\n"), "-target", "z"}, `no column "z"`},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", tc.args, code, stderr, tc.want)
		}
	}
}

// Each model runs end to end; the JSON holds finite numbers and the plot is a PNG.
func TestModelsEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var one, two, reg, cls, ret strings.Builder
	one.WriteString("x\n")
	two.WriteString("a,b\n")
	reg.WriteString("x1,x2,y\n")
	cls.WriteString("x1,x2,y\n")
	ret.WriteString("r\n")
	for i := 0; i < 300; i++ {
		c := float64(rng.IntN(2)) * 8
		fmt.Fprintf(&one, "%g\n", c+rng.NormFloat64())
		fmt.Fprintf(&two, "%g,%g\n", c+rng.NormFloat64(), -c+rng.NormFloat64())
		x1, x2 := rng.NormFloat64(), rng.NormFloat64()
		fmt.Fprintf(&reg, "%g,%g,%g\n", x1, x2, 1+2*x1-x2+0.3*rng.NormFloat64())
		y := 0
		if rng.Float64() < 1/(1+math.Exp(-(2*x1-x2))) {
			y = 1
		}
		fmt.Fprintf(&cls, "%g,%g,%d\n", x1, x2, y)
		if i < 60 {
			fmt.Fprintf(&ret, "%g\n", rng.NormFloat64())
		}
	}
	files := map[string]string{"one": write(t, "one.csv", one.String()), "two": write(t, "two.csv", two.String()),
		"reg": write(t, "reg.csv", reg.String()), "cls": write(t, "cls.csv", cls.String()), "ret": write(t, "ret.csv", ret.String())}
	dir := t.TempDir()
	for i, tc := range []struct {
		args   []string
		plot   bool
		assign bool
	}{
		{[]string{"gmm", "-data", files["one"], "-k", "2"}, true, true},
		{[]string{"gmm", "-data", files["one"], "-k", "2", "-method", "svi", "-iters", "50"}, true, true},
		{[]string{"vbgmm", "-data", files["two"], "-k", "5"}, true, true},
		{[]string{"vbgmm", "-data", files["one"], "-k", "5", "-method", "svi", "-iters", "50", "-batch", "50"}, true, true},
		{[]string{"blr", "-data", files["reg"]}, true, false},
		{[]string{"factor", "-data", files["reg"], "-k", "1"}, true, false},
		{[]string{"logistic", "-data", files["cls"]}, true, false},
		{[]string{"logistic", "-data", files["cls"], "-method", "svi", "-iters", "50"}, true, false},
		{[]string{"logistic", "-data", files["cls"], "-method", "advi", "-family", "fullrank", "-iters", "300"}, true, false},
		{[]string{"logistic", "-data", files["cls"], "-method", "svgd", "-iters", "30", "-particles", "20"}, false, false},
		{[]string{"bnn", "-data", files["cls"], "-hidden", "2", "-iters", "100"}, true, false},
		{[]string{"sv", "-data", files["ret"], "-iters", "100"}, true, false},
		{[]string{"estimators", "-data", files["cls"], "-iters", "20", "-repeats", "10"}, true, false},
	} {
		js, pl := filepath.Join(dir, fmt.Sprintf("%d.json", i)), filepath.Join(dir, fmt.Sprintf("%d.png", i))
		args := append(tc.args, "-json", js)
		if tc.plot {
			args = append(args, "-plot", pl)
		}
		code, stdout, stderr := runCmd(args...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", tc.args, code, stderr)
			continue
		}
		if !strings.Contains(stdout, "mean") {
			t.Errorf("%v: stdout lacks the summary:\n%s", tc.args, stdout)
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if len(r.Params) == 0 || (tc.plot && len(r.ELBO) == 0) || (tc.assign && len(r.Assign) != r.Rows) {
			t.Errorf("%v: JSON has %d params, %d ELBO values, %d assignments", tc.args, len(r.Params), len(r.ELBO), len(r.Assign))
		}
		for _, p := range r.Params {
			if math.IsNaN(p.Mean) || math.IsNaN(p.SD) {
				t.Errorf("%v: %s not finite", tc.args, p.Name)
			}
		}
		if tc.plot {
			f, err := os.Open(pl)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil || img.Bounds().Dx() < 300 {
				t.Errorf("%v: plot: %v", tc.args, err)
			}
		}
	}
}
