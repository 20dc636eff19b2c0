package amortized

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNewFamilyForms: canonical forms (defaults written out) and the
// errors for bad arguments, naming the argument and its range.
func TestNewFamilyForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"householder:4", "householder:4"},
		{"sylvester:3", "sylvester:3:5"},
		{"sylvester:3:2", "sylvester:3:2"},
		{"sylvester-householder:2:8", "sylvester-householder:2:8"},
		{"sylvester-triangular:1", "sylvester-triangular:1"},
		{"mixture:7", "mixture:7"},
		{"aux:3", "aux:3:16"},
		{"aux:3:9", "aux:3:9"},
	} {
		got, err := CanonicalPosterior(tc.in, 5)
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"householder", "householder takes K"},
		{"householder:0", `K "0" is not an integer from 1 to 1000`},
		{"sylvester", "sylvester takes K or K:M"},
		{"sylvester:2:6", `M "6" is not an integer from 1 to 5 (M is at most the latent dimension)`},
		{"sylvester:2:0", `M "0"`},
		{"sylvester:1001", `K "1001"`},
		{"sylvester-householder:2", "sylvester-householder takes K:H"},
		{"sylvester-householder:2:1001", `H "1001" is not an integer from 1 to 1000`},
		{"sylvester-triangular:2:2", "sylvester-triangular takes K"},
		{"mixture", "mixture takes C"},
		{"mixture:0", `C "0" is not an integer from 1 to 1000`},
		{"mixture:x", `C "x"`},
		{"aux", "aux takes A or A:H"},
		{"aux:0", `A "0"`},
		{"aux:2:-1", `H "-1"`},
		{"aux:1:2:3", "aux takes A or A:H"},
	} {
		c := Config{DataDim: 4, Latent: 5, Posterior: tc.in}
		_, err := c.Normalize()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `posterior "`+tc.in+`"`) {
			t.Errorf("%q: err = %v, want it to name the value and say %q", tc.in, err, tc.want)
		}
	}
}

// plainFamily hides a family's HeadPreparer methods.
type plainFamily struct{ Family }

// TestSylvesterPreparedLogLikelihood: log p(x) with Q computed once per row
// (HeadPreparer) is, bit for bit, log p(x) with Q computed for every sample
// in the samples' graph, as it was before.
func TestSylvesterPreparedLogLikelihood(t *testing.T) {
	for _, post := range []string{"sylvester:2:3", "sylvester:2", "sylvester-householder:2:2", "sylvester-triangular:2"} {
		for _, dt := range []string{"float32", "float64"} {
			cfg := Config{DataDim: 12, Hidden: []int{9}, Latent: 4, Posterior: post, Dtype: dt}
			m, err := New(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.family.(HeadPreparer); !ok {
				t.Fatalf("%s: not a HeadPreparer", post)
			}
			x := rowsOf(synthetic(30, 12, 4), 12)
			prepared, err := m.LogLikelihood(x, 25, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			m.family = plainFamily{m.family}
			perSample, err := m.LogLikelihood(x, 25, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			for i := range prepared {
				if math.Float64bits(prepared[i]) != math.Float64bits(perSample[i]) || math.IsNaN(prepared[i]) {
					t.Fatalf("%s %s row %d: log p(x) %v with Q once per row, %v with Q per sample", post, dt, i, prepared[i], perSample[i])
				}
			}
		}
	}
}
