package flows_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/govae/govae/flows"
	G "gorgonia.org/gorgonia"
)

// Compose() is the identity with a zero log-determinant of length B, and
// stays so when its log-determinant is summed with another's over runs.
func TestComposeEmptyIsIdentity(t *testing.T) {
	const B, L = 4, 3
	rng := rand.New(rand.NewPCG(1, 2))
	zv := randn(rng, B*L, 1)
	r := newRig(t)
	z := r.input(zv, B, L)
	out, logDet, err := flows.Compose().Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	if out != z {
		t.Errorf("Compose() returned a new node for z")
	}
	if !logDet.Shape().Eq([]int{B}) {
		t.Fatalf("log-det shape %v, want (%d)", logDet.Shape(), B)
	}
	// Used inside a larger sum, the zero vector must not be overwritten by
	// the tape machine's in-place reuse.
	sum, err := G.Add(logDet, r.input(fill(B, 2), B))
	if err != nil {
		t.Fatal(err)
	}
	r.watch(logDet, sum)
	for range 3 {
		r.run()
		for i, v := range r.get(logDet) {
			if v != 0 {
				t.Fatalf("log-det[%d] = %g, want 0", i, v)
			}
		}
		for i, v := range r.get(sum) {
			if v != 2 {
				t.Fatalf("0 + 2 gave %g in row %d", v, i)
			}
		}
	}
}

// A composition's output is its steps applied one by one and its
// log-determinant their sum; nesting and empty steps change nothing.
func TestComposeChainsAndSums(t *testing.T) {
	const B, L = 5, 3
	rng := rand.New(rand.NewPCG(3, 4))
	zv := randn(rng, B*L, 1.5)
	r := newRig(t)
	z := r.input(zv, B, L)
	pp := planar.gens[1].draw(rng, zv, B, L)
	rp := radial.gens[0].draw(rng, zv, B, L)
	p, err := flows.NewPlanar(r.input(pp[0], B, L), r.input(pp[1], B, L), r.input(pp[2], B))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := flows.NewRadial(r.input(rp[0], B, L), r.input(rp[1], B), r.input(rp[2], B))
	if err != nil {
		t.Fatal(err)
	}
	y1, l1, err := p.Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	y2, l2, err := rf.Forward(y1)
	if err != nil {
		t.Fatal(err)
	}
	y, l, err := flows.Compose(p, rf).Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	yn, ln, err := flows.Compose(flows.Compose(p), flows.Compose(), flows.Compose(rf)).Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	r.watch(l1, l2, y2, y, l, yn, ln)
	r.run()
	ld1, ld2 := r.get(l1), r.get(l2)
	for i := range B {
		if ld1[i] == 0 || ld2[i] == 0 {
			t.Fatalf("row %d: a step has log-det 0, so the sum check is vacuous", i)
		}
	}
	for _, c := range []struct {
		name  string
		y, ld []float64
	}{
		{"Compose(p, r)", r.get(y), r.get(l)},
		{"Compose(Compose(p), Compose(), Compose(r))", r.get(yn), r.get(ln)},
	} {
		want := r.get(y2)
		for i := range want {
			if math.Abs(c.y[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
				t.Errorf("%s: out[%d] = %g, steps one by one give %g", c.name, i, c.y[i], want[i])
			}
		}
		for i := range B {
			if want := ld1[i] + ld2[i]; math.Abs(c.ld[i]-want) > 1e-12*(1+math.Abs(want)) {
				t.Errorf("%s: log-det[%d] = %g, sum of steps %g", c.name, i, c.ld[i], want)
			}
		}
	}
}

// Shape mistakes are errors naming the offending node, not panics.
func TestShapeErrors(t *testing.T) {
	const B, L = 3, 2
	r := newRig(t)
	m := func(rows, cols int) *G.Node { return r.input(make([]float64, rows*cols), rows, cols) }
	v := func(n int) *G.Node { return r.input(make([]float64, n), n) }
	p, err := flows.NewPlanar(m(B, L), m(B, L), v(B))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := flows.NewRadial(m(B, L), v(B), v(B))
	if err != nil {
		t.Fatal(err)
	}
	wide, err := flows.NewRadial(m(B, L+1), v(B), v(B))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		err        func() error
	}{
		{"planar w", "planar w", func() error { _, err := flows.NewPlanar(m(B, L), m(B, L+1), v(B)); return err }},
		{"planar b", "planar b", func() error { _, err := flows.NewPlanar(m(B, L), m(B, L), v(B+1)); return err }},
		{"planar u vector", "planar u", func() error { _, err := flows.NewPlanar(v(B), m(B, L), v(B)); return err }},
		{"radial alpha", "radial raw alpha", func() error { _, err := flows.NewRadial(m(B, L), v(B-1), v(B)); return err }},
		{"radial nil z0", "radial z0", func() error { _, err := flows.NewRadial(nil, v(B), v(B)); return err }},
		{"planar z", "planar z", func() error { _, _, err := p.Forward(m(B+1, L)); return err }},
		{"radial z", "radial z", func() error { _, _, err := rf.Forward(m(B, L+1)); return err }},
		{"compose step", "radial z has shape (3, 2), want (3, 3) (step 2 of 2)", func() error { _, _, err := flows.Compose(p, wide).Forward(m(B, L)); return err }},
		{"compose vector", "matrix", func() error { _, _, err := flows.Compose().Forward(v(B)); return err }},
	} {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}
