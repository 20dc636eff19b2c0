package checkpoints

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/govae/govae/amortized"
)

// The fixture testdata/v1_iaf.safetensors was written by the code before the
// parts redesign (commit c289433, format version 1), with the numbers it gave
// in testdata/v1_iaf.json. Files users already have must keep loading and
// give the same numbers. GOVAE_WRITE_FIXTURE=1 rewrites both (do not, unless
// the fixture itself must change).
const (
	v1Fixture = "testdata/v1_iaf.safetensors"
	v1Numbers = "testdata/v1_iaf.json"
)

type v1Golden struct {
	ELBO   []float64   `json:"elbo"`   // ELBO of fixtureX with rng PCG(3, 4)
	Decode [][]float32 `json:"decode"` // Decode of fixtureZ
	Encode [][]float32 `json:"encode"` // Encode of fixtureX
	LL     []float64   `json:"ll"`     // LogLikelihood of fixtureX, k = 7, rng PCG(5, 6)
	Step   int64       `json:"step"`
}

func fixtureX() [][]float32 {
	x := make([][]float32, 5)
	for i := range x {
		x[i] = make([]float32, 16)
		for p := range x[i] {
			if (p+i)%3 == 0 {
				x[i][p] = 1
			}
		}
	}
	return x
}

func fixtureZ() [][]float32 {
	return [][]float32{{0, 0, 0}, {1, -0.5, 0.25}, {-2, 1, 0.5}}
}

func v1Measure(t *testing.T, m *amortized.Model) v1Golden {
	t.Helper()
	var g v1Golden
	var err error
	if g.ELBO, err = m.ELBO(fixtureX(), rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	if g.Decode, err = m.Decode(fixtureZ()); err != nil {
		t.Fatal(err)
	}
	if g.Encode, err = m.Encode(fixtureX()); err != nil {
		t.Fatal(err)
	}
	if g.LL, err = m.LogLikelihood(fixtureX(), 7, rand.New(rand.NewPCG(5, 6))); err != nil {
		t.Fatal(err)
	}
	return g
}

func writeV1Fixture(t *testing.T) {
	cfg := amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{8}, Latent: 3, Posterior: "iaf:1"}
	m, err := amortized.New(cfg, 21)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := amortized.NewTrainer(m, 5, amortized.TrainOptions{Epochs: 1, Seed: 2, LR: 1e-2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var flat []float32
	for _, r := range fixtureX() {
		flat = append(flat, r...)
	}
	for range 3 {
		if _, err := tr.Step(flat, 5, 1); err != nil {
			t.Fatal(err)
		}
	}
	st := tr.State()
	if err := Save(v1Fixture, m, &st); err != nil {
		t.Fatal(err)
	}
	g := v1Measure(t, m)
	g.Step = st.Step
	js, _ := json.MarshalIndent(g, "", " ")
	if err := os.WriteFile(v1Numbers, js, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestV1FixtureLoads loads a checkpoint written before the redesign and
// checks it gives the numbers it gave then, within float32 rounding.
func TestV1FixtureLoads(t *testing.T) {
	if os.Getenv("GOVAE_WRITE_FIXTURE") != "" {
		writeV1Fixture(t)
	}
	js, err := os.ReadFile(filepath.FromSlash(v1Numbers))
	if err != nil {
		t.Fatal(err)
	}
	var want v1Golden
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	m, st, err := LoadTraining(v1Fixture)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != want.Step {
		t.Errorf("step %d, want %d", st.Step, want.Step)
	}
	if d, err := ReadData(v1Fixture); err != nil || d != nil {
		t.Errorf("ReadData(version 1 file) = %+v, %v; want no description and no error", d, err)
	}
	got := v1Measure(t, m)
	// The IAF gate's float32 exponential and log1p (simd's, a few ulps from
	// the float64 ones that wrote the fixture) move the bounds by a few
	// parts in 1e8.
	near := func(a, b float64) bool { return math.Abs(a-b) <= 2e-7*math.Abs(b) }
	for i := range want.ELBO {
		if !near(got.ELBO[i], want.ELBO[i]) {
			t.Errorf("ELBO[%d] = %v, want %v", i, got.ELBO[i], want.ELBO[i])
		}
		if !near(got.LL[i], want.LL[i]) {
			t.Errorf("LogLikelihood[%d] = %v, want %v", i, got.LL[i], want.LL[i])
		}
	}
	for _, pair := range [][2][][]float32{{got.Decode, want.Decode}, {got.Encode, want.Encode}} {
		for i := range pair[1] {
			for j := range pair[1][i] {
				// Decode's sigmoid is a fused float32 kernel now (a few ulps from the
				// float64 one that wrote the fixture); Encode stays exact.
				if d := math.Abs(float64(pair[0][i][j] - pair[1][i][j])); d > 4e-7*math.Abs(float64(pair[1][i][j]))+1e-12 {
					t.Errorf("value [%d][%d] = %v, want %v", i, j, pair[0][i][j], pair[1][i][j])
				}
			}
		}
	}
}

// TestDataRoundTrip: the data description is typed metadata that reads back
// as written, and a file saved without one has none.
func TestDataRoundTrip(t *testing.T) {
	m, err := amortized.New(amortized.Config{DataDim: 6, ImageRows: 2, ImageCols: 3, Hidden: []int{4}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := Data{Dataset: "fashion-mnist", Dir: "/data/fm", Binarize: "static", EvalSeed: 9, Rows: 2, Cols: 3, Channels: 1}
	with, without := filepath.Join(dir, "with.safetensors"), filepath.Join(dir, "without.safetensors")
	if err := SaveWithData(with, m, nil, &want); err != nil {
		t.Fatal(err)
	}
	if err := Save(without, m, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadData(with); err != nil || got == nil || *got != want {
		t.Errorf("ReadData = %+v, %v; want %+v", got, err, want)
	}
	if got, err := ReadData(without); err != nil || got != nil {
		t.Errorf("ReadData(no description) = %+v, %v; want nil", got, err)
	}
	if _, err := Load(with); err != nil {
		t.Error(err)
	}
}
