package nets

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// torchConv is run by Debian's python3 with PyTorch: it reads the cases
// from a JSON file and prints torch's outputs (float64).
const torchConv = `
import json, sys, torch
import torch.nn.functional as F
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    g = c["g"]
    x = torch.tensor(c["x"], dtype=torch.float64).view(c["B"], g["InC"], g["InH"], g["InW"])
    w = torch.tensor(c["w"], dtype=torch.float64).view(*c["wshape"])
    b = torch.tensor(c["b"], dtype=torch.float64)
    if g["Transposed"]:
        y = F.conv_transpose2d(x, w, b, stride=g["Stride"], padding=g["Pad"], output_padding=(g["OutPadH"], g["OutPadW"]))
    else:
        y = F.conv2d(x, w, b, stride=g["Stride"], padding=g["Pad"])
    out.append(y.flatten().tolist())
print(json.dumps(out))
`

// TestConv2DMatchesTorch compares Conv2D and its transposed form with
// PyTorch's conv2d and conv_transpose2d on the same weights (PyTorch's
// layout); it skips without Debian's python3-torch.
func TestConv2DMatchesTorch(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		t.Skip("needs /usr/bin/python3 with torch (apt-get install python3-torch)")
	}
	type tc struct {
		G      Conv2DGeom
		B      int
		X, W   []float64
		Bias   []float64
		WShape []int
	}
	geoms := append([]Conv2DGeom{
		{InC: 1, InH: 28, InW: 28, OutC: 4, KH: 4, KW: 4, Stride: 2, Pad: 1},
		{InC: 4, InH: 7, InW: 7, OutC: 3, KH: 4, KW: 4, Stride: 2, Pad: 1, Transposed: true},
	}, convCases...)
	var cases []map[string]any
	var want []tc
	rng := rand.New(rand.NewPCG(12, 12))
	for _, g := range geoms {
		B := 2
		x, w, b, _ := randConv(rng, g, B)
		want = append(want, tc{G: g, B: B, X: x, W: w, Bias: b, WShape: g.WeightShape()})
		cases = append(cases, map[string]any{"g": g, "B": B, "x": x, "w": w, "b": b, "wshape": g.WeightShape()})
	}
	dir := t.TempDir()
	in, script := filepath.Join(dir, "cases.json"), filepath.Join(dir, "conv.py")
	raw, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(torchConv), 0o600); err != nil {
		t.Fatal(err)
	}
	outRaw, err := exec.Command("/usr/bin/python3", script, in).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got [][]float64
	if err := json.Unmarshal(outRaw, &got); err != nil {
		t.Fatal(err)
	}
	for i, c := range want {
		y, _, _, _ := convRun(t, c.G, c.B, "", c.X, c.W, c.Bias, make([]float64, c.B*c.G.OutSize()), tensor.Float64, 1)
		if len(got[i]) != len(y) {
			t.Fatalf("%v: torch gives %d values, we %d", c.G, len(got[i]), len(y))
		}
		if d := maxDiff(y, got[i]); d > 1e-12 {
			t.Fatalf("%v: differs from torch by %g", c.G, d)
		}
	}
}
