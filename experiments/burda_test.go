package main

import (
	"math"
	"strings"
	"testing"

	"github.com/govae/govae/data"
)

// TestBurdaModelInit: the burda rows start from the paper's initialization
// (yburda/iwae): weights uniform on ±sqrt(6/(in+out)) (logvar heads ±2x,
// their sigma = exp(.)), biases zero, the decoder's output bias the logit of
// the mean training image, clipped to [0.001, 0.999].
func TestBurdaModelInit(t *testing.T) {
	// 4 images of 2x3 pixels; pixel d's mean grey level is known.
	pix := []uint8{
		0, 255, 255, 0, 51, 255,
		0, 255, 0, 0, 102, 255,
		0, 255, 255, 0, 153, 255,
		0, 255, 0, 255, 204, 255,
	}
	want := []float64{0.001, 0.999, 0.5, 0.25, 0.5, 0.999}
	ds := &dataset{Train: &data.Images{N: 4, Channels: 1, Rows: 2, Cols: 3, Pix: pix}, TrainIdx: []int{0, 1, 2, 3}}
	for _, two := range []bool{false, true} {
		cfg := burdaConfig(ds)
		if two {
			cfg = burdaTwoLayerConfig(ds)
		}
		m, err := burdaModel(ds, cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		sawLogvar := false
		for _, p := range m.Params().All() {
			v := p.Float32s()
			switch {
			case p.Name == "decoder.logits.bias":
				for d, q := range want {
					if l := math.Log(q / (1 - q)); math.Abs(float64(v[d])-l) > 1e-5 {
						t.Errorf("two layers %v: output bias[%d] = %v, want logit(%v) = %v", two, d, v[d], q, l)
					}
				}
			case len(p.Shape) == 1:
				for i, x := range v {
					if x != 0 {
						t.Errorf("two layers %v: %s[%d] = %v, want 0", two, p.Name, i, x)
						break
					}
				}
			default:
				bound := math.Sqrt(6 / float64(p.Shape[0]+p.Shape[1]))
				if strings.HasSuffix(p.Name, ".logvar.weight") {
					bound *= 2
					sawLogvar = true
				}
				// uniform on ±bound: inside it, and the largest |w| near it
				big := 0.0
				for _, x := range v {
					big = math.Max(big, math.Abs(float64(x)))
				}
				if big > bound || (len(v) >= 50 && big < 0.8*bound) {
					t.Errorf("two layers %v: %s: max |w| %.4f, want uniform on ±%.4f", two, p.Name, big, bound)
				}
			}
		}
		if !sawLogvar {
			t.Errorf("two layers %v: no logvar head", two)
		}
	}
}

// TestBurdaRowWanted: -rows picks a row by its exact name before falling
// back to a substring ("two layers, IWAE, k = 5" must not run k = 50).
func TestBurdaRowWanted(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want int
	}{{"", 6}, {"two layers", 3}, {"two layers, IWAE, k = 5", 1}, {"IWAE, k = 5", 1}, {"k = 50", 2}, {"nothing", 0}} {
		n := 0
		for _, r := range burdaRows {
			if burdaRowWanted(r.name, tc.sel) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("-rows %q keeps %d rows, want %d", tc.sel, n, tc.want)
		}
	}
}
