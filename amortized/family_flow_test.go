package amortized

import (
	"fmt"
	"slices"
	"testing"
)

// TestFlowHeadsKeepTheirParameters: planar and radial run their steps'
// heads as one product (Head.Parts), but the parameters stay the separate
// heads of checkpoint format versions 1 and 2, in the same order, so
// checkpoints written before load unchanged (docs/checkpoint-format.md).
func TestFlowHeadsKeepTheirParameters(t *testing.T) {
	for _, c := range []struct {
		post  string
		parts []string
		width []int
	}{
		{"planar:2", []string{"u", "w", "b"}, []int{4, 4, 1}},
		{"radial:2", []string{"z0", "alpha", "beta"}, []int{4, 1, 1}},
	} {
		cfg := Config{DataDim: 6, Hidden: []int{5}, Latent: 4, Posterior: c.post}
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, h := range []string{"mean", "logvar"} {
			want = append(want, fmt.Sprintf("encoder.%s.weight [5 4]", h), fmt.Sprintf("encoder.%s.bias [4]", h))
		}
		for k := range 2 {
			for i, p := range c.parts {
				want = append(want, fmt.Sprintf("encoder.flow.%d.%s.weight [5 %d]", k, p, c.width[i]),
					fmt.Sprintf("encoder.flow.%d.%s.bias [%d]", k, p, c.width[i]))
			}
		}
		for _, p := range m.params.All() {
			if len(got) < len(want) && p.Name[:8] == "encoder." && p.Name[:10] != "encoder.0." {
				got = append(got, fmt.Sprintf("%s %v", p.Name, p.Shape))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: encoder head parameters\n%v\nwant\n%v", c.post, got, want)
		}
	}
}
