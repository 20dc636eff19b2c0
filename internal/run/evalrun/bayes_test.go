package evalrun

import (
	"testing"

	"github.com/govae/govae/amortized"
)

// TestWeightDrawsSetting: the default for a Bayesian decoder, 1 or none
// for a plain one, and errors naming -weight-draws.
func TestWeightDrawsSetting(t *testing.T) {
	c := amortized.Config{DataDim: 4, Hidden: []int{3}, Latent: 2}
	plain, err := amortized.New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.DecoderPriorSigma = 1
	bayes, err := amortized.New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m           *amortized.Model
		given, want int
		bad         bool
	}{
		{plain, 0, 0, false}, {plain, 1, 0, false}, {plain, 3, 0, true},
		{bayes, 0, DefaultWeightDraws, false}, {bayes, 7, 7, false},
		{bayes, -1, 0, true}, {bayes, MaxWeightDraws + 1, 0, true},
	} {
		got, err := weightDraws(tc.m, tc.given)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("bayes %v, -weight-draws %d: %d, %v", tc.m.BayesDecoder(), tc.given, got, err)
		}
	}
}
