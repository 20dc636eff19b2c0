package main

import (
	"math"
	"testing"
)

func TestConvPeerStats(t *testing.T) {
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	s := summarize([]float64{4, 1, 3, 2})
	near("Q1", s.Q1, 1.75, 1e-12)
	near("median", s.Median, 2.5, 1e-12)
	near("Q3", s.Q3, 3.25, 1e-12)
	near("SD", s.SD, math.Sqrt(5.0/3), 1e-12)
	near("SE", s.SE, math.Sqrt(5.0/3)/2, 1e-12)

	// Variances of the means 0.1 and 0.8: SE 0.9^0.5, df 0.81 / (0.01/9 + 0.64/4).
	diff, se, df := welch(cpSummary{N: 10, Mean: 0, SD: 1}, cpSummary{N: 5, Mean: 1, SD: 2})
	near("diff", diff, -1, 1e-12)
	near("Welch SE", se, math.Sqrt(0.9), 1e-12)
	near("Welch df", df, 0.81/(0.01/9+0.16), 1e-9)

	near("t(0.95, 10)", tQuantile(0.95, 10), 1.812461, 1e-5)
	near("t(0.95, large)", tQuantile(0.95, 1e7), 1.644854, 1e-5)
	// 2 (1.644854 + 1.281552)^2 / 0.25 = 68.51 -> 69.
	if n := tostSeeds(1, 0.5); n != 69 {
		t.Errorf("tostSeeds(1, 0.5) = %d, want 69", n)
	}

	run := func(side string, final float64) cpRun {
		return cpRun{Side: side, Curve: []float64{-200, -190, final}}
	}
	ours := []cpRun{run("govae", -120.1), run("govae", -119.9), run("govae", -120.0)}
	theirs := []cpRun{run("peer", -120.05), run("peer", -119.95), run("peer", -120.0)}
	c := compare(cpMeasure{value: (*cpRun).final}, ours, theirs)
	if !c.done || !c.equivalent || c.lo > 0 || c.hi < 0 {
		t.Errorf("tight equal samples: %+v, want equivalent", c)
	}
	theirs[0].Curve[2] = -110
	if c := compare(cpMeasure{value: (*cpRun).final}, ours, theirs); c.equivalent {
		t.Errorf("spread sample: %+v, want not equivalent", c)
	}
	if l := ours[0].left(); l != 3 {
		t.Errorf("left = %d, want 3", l)
	}
	near("late", ours[0].late(), (-200-190-120.1)/3, 1e-12)
}
