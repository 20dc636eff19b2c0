package main

import (
	"strings"
	"testing"
)

// TestPosteriorsReading checks the classification against the diagonal
// Gaussian (more than posteriorsBeatZ paired standard errors) and that every
// family not above it gets a reason built from its numbers.
func TestPosteriorsReading(t *testing.T) {
	row := func(f string, shift, elbo, kl float64, active int, curve ...float64) posteriorRow {
		// Per-image log p(x): diag's, or diag's plus shift ± 0.5
		// alternating, so that the paired standard error is 0.5·sqrt(6/5)/sqrt(6) ≈ 0.22.
		lp := []float64{-100, -101, -99, -102, -98, -100}
		ev := &evaluation{KL: kl, ActiveUnits: active, ELBO: elbo}
		for i, v := range lp {
			w := 0.5
			if i%2 == 1 {
				w = -0.5
			}
			ev.LogPxRows = append(ev.LogPxRows, v+shift+w*map[bool]float64{true: 0, false: 1}[f == "diag"])
		}
		ev.LogPx = mean(ev.LogPxRows)
		tr := &trained{TrainSeconds: 10, Images: 1000}
		for i, c := range curve {
			tr.Curve = append(tr.Curve, epochPoint{Epoch: i + 1, TestELBO: c})
		}
		return posteriorRow{family: f, tr: tr, ev: ev}
	}
	rows := []posteriorRow{
		row("diag", 0, -105, 20, 20, -110, -106),
		row("good", 3, -103, 21, 20, -108, -104),        // +3 ± 0.2: above
		row("tight", 0.1, -100.5, 20.5, 20, -110, -105), // within error, smaller gap, still rising faster
		row("loose", -2, -110, 25, 18, -112, -111),      // below, larger gap, more KL, fewer units
	}
	sz := posteriorsSize{Epochs: 2}
	got := posteriorsReading("mnist", rows, sz)
	for _, want := range []string{
		"good has the highest test log p(x)",
		"by more than 2 paired standard errors (difference ± its standard error): good (+3.00 ± ",
		"Not above it by more than 2 paired standard errors: tight (+0.10 ± ",
		"*tight*: its q fits its own model's posterior more closely than diag's (log p(x) − ELBO 0.60 against 5.00), but the model trained with it is not measurably better",
		"still rising faster than diag's in the last epoch (+5.00 against +4.00 nats)",
		"*loose*: its gap log p(x) − ELBO (8.00) is not below diag's (5.00)",
		"and the model is worse",
		"it spends more KL (25.00 against 20.00 nats)",
		"fewer latent units (18 active against 20)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reading lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "*good*") {
		t.Errorf("a family above diag got a reason:\n%s", got)
	}
	tab := posteriorsTable(rows, sz)
	if !strings.Contains(tab, "| good | -97.00 ± 0.00 | +3.00 ± 0.22 |") || !strings.Contains(tab, "| 1.00 |") {
		t.Errorf("table:\n%s", tab)
	}
}
