// Command vi fits classical Bayesian models by variational inference
// without an encoder (package vi): CAVI, SVI, ADVI and SVGD.
//
//	vi gmm      -data x.csv -k 3           mixture of unit-variance Gaussians (Blei et al. 2017), 1 column; -method cavi|svi
//	vi vbgmm    -data xy.csv -k 10         variational Bayesian GMM (Bishop 10.2), all columns; -method cavi|svi
//	vi blr      -data d.csv                Bayesian linear regression, last column (or -target) on the others (Bishop 10.3)
//	vi factor   -data d.csv -k 2           Bayesian factor model with k factors
//	vi logistic -data d.csv                Bayesian logistic regression, 0/1 target; -method cavi|svi (Jaakkola-Jordan) or advi|svgd
//	vi bnn      -data d.csv -hidden 5      a one-hidden-layer Bayesian neural network classifier; -method advi|svgd
//	vi sv       -data returns.csv          AR(1) stochastic volatility on one column of returns; -method advi|svgd
//	vi estimators -data d.csv              score-function (with and without control variates) against pathwise
//	                                       ELBO gradients on logistic regression: total variance per iteration
//
// Every command prints posterior means and standard deviations, and with
// -json writes them with the ELBO trace (and cluster assignments for the
// mixtures); -plot writes the ELBO trace and, for the mixtures, the fit
// over the data.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/vi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

var models = map[string][]string{ // methods, the first the default
	"gmm":      {"cavi", "svi"},
	"vbgmm":    {"cavi", "svi"},
	"blr":      {"cavi"},
	"factor":   {"cavi"},
	"logistic": {"cavi", "svi", "advi", "svgd"},
	"bnn":      {"advi", "svgd"},
	"sv":       {"advi", "svgd"},
	// the gradient estimators of a mean-field ADVI fit of logistic regression
	"estimators": {"compare"},
}

const modelList = "gmm, vbgmm, blr, factor, logistic, bnn, sv, estimators"

type options struct {
	model, method, data, jsonOut, plotOut, target, family string
	k, iters, batch, particles, hidden, samples, repeats  int
	seed                                                  uint64
	sigma2, alpha0, priorSD, eta, kappa, step             float64
	noIntercept                                           bool
}

// Caps on sizes read from the command line.
const (
	maxK         = 1000
	maxIters     = 10_000_000
	maxBatch     = 1_000_000
	maxParticles = 10_000
	maxHidden    = 1000
)

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: vi MODEL -data FILE.csv [flags]\nmodels: %s\nrun 'vi MODEL -h' for the flags\n", modelList)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	o := options{model: args[0]}
	methods, ok := models[o.model]
	if !ok {
		fmt.Fprintf(stderr, "vi: unknown model %q, want one of %s\n", o.model, modelList)
		return 2
	}
	fs := flag.NewFlagSet("vi "+o.model, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.data, "data", "", "CSV file with a header row (required)")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.plotOut, "plot", "", "write a PNG plot (the ELBO trace; for mixtures the fit over the data) to this file")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (initialization, mini-batches, Monte Carlo draws)")
	fs.IntVar(&o.iters, "iters", 0, "iterations (CAVI sweeps, SVI/ADVI/SVGD steps); 0: the method's default")
	if len(methods) > 1 {
		fs.StringVar(&o.method, "method", methods[0], "inference: "+strings.Join(methods, ", "))
	} else {
		o.method = methods[0]
	}
	switch o.model {
	case "gmm", "vbgmm":
		fs.IntVar(&o.k, "k", 3, "mixture components (for vbgmm an upper bound: surplus ones are pruned)")
	case "factor":
		fs.IntVar(&o.k, "k", 2, "number of factors")
	}
	switch o.model {
	case "gmm":
		fs.Float64Var(&o.sigma2, "sigma2", 100, "prior variance of the component means")
	case "vbgmm":
		fs.Float64Var(&o.alpha0, "alpha0", 1e-3, "Dirichlet concentration of the weights (small prunes surplus components)")
	case "blr", "logistic", "bnn", "estimators":
		fs.StringVar(&o.target, "target", "", "the target column's name (default: the last column)")
	}
	if o.model == "blr" || o.model == "logistic" || o.model == "estimators" {
		fs.BoolVar(&o.noIntercept, "no-intercept", false, "do not add a column of ones")
	}
	if o.model == "estimators" {
		fs.IntVar(&o.samples, "samples", 1, "Monte Carlo draws per gradient estimate")
		fs.IntVar(&o.repeats, "repeats", 50, "independent estimates per measurement, whose spread is the variance")
	}
	if o.model == "logistic" || o.model == "bnn" || o.model == "estimators" {
		fs.Float64Var(&o.priorSD, "prior-sd", 0, "prior standard deviation of the weights (default 1 for logistic, 1 for bnn)")
	}
	if o.model == "bnn" {
		fs.IntVar(&o.hidden, "hidden", 5, "hidden units")
	}
	if contains(methods, "svi") {
		fs.IntVar(&o.batch, "batch", 256, "with -method svi: mini-batch size")
		fs.Float64Var(&o.kappa, "kappa", 0.7, "with -method svi: step size (t + 1)^-kappa, 0.5 < kappa <= 1")
	}
	if contains(methods, "advi") {
		fs.StringVar(&o.family, "family", "meanfield", "with -method advi: meanfield or fullrank")
		fs.Float64Var(&o.eta, "eta", 0.1, "with -method advi: step-size scale")
		fs.IntVar(&o.samples, "samples", 1, "with -method advi: Monte Carlo draws per gradient")
	}
	if contains(methods, "svgd") {
		fs.IntVar(&o.particles, "particles", 100, "with -method svgd: particles")
		fs.Float64Var(&o.step, "step", 0.05, "with -method svgd: step size")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vi %s: unexpected argument %q\n", o.model, fs.Arg(0))
		return 2
	}
	if err := o.check(methods); err != nil {
		fmt.Fprintf(stderr, "vi %s: %v\n", o.model, err)
		return 2
	}
	res, err := fit(ctx, o, stdout)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "vi %s: interrupted; nothing written\n", o.model)
		} else {
			fmt.Fprintf(stderr, "vi %s: %v\n", o.model, err)
		}
		return 1
	}
	res.print(stdout)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = atomicfile.WriteFile(o.jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "vi %s: -json %s: %v\n", o.model, o.jsonOut, err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.jsonOut)
	}
	if o.plotOut != "" {
		if err := writePlot(o.plotOut, res); err != nil {
			fmt.Fprintf(stderr, "vi %s: -plot %s: %v\n", o.model, o.plotOut, err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.plotOut)
	}
	return 0
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (o *options) check(methods []string) error {
	if o.data == "" {
		return errors.New("-data FILE.csv is required")
	}
	if !contains(methods, o.method) {
		return fmt.Errorf("-method %q, want one of %s", o.method, strings.Join(methods, ", "))
	}
	if (o.model == "gmm" || o.model == "vbgmm" || o.model == "factor") && (o.k < 1 || o.k > maxK) {
		return fmt.Errorf("-k %d, want 1 to %d", o.k, maxK)
	}
	if o.iters < 0 || o.iters > maxIters {
		return fmt.Errorf("-iters %d, want 0 (default) to %d", o.iters, maxIters)
	}
	if o.method == "svi" {
		if o.batch < 1 || o.batch > maxBatch {
			return fmt.Errorf("-batch %d, want 1 to %d", o.batch, maxBatch)
		}
		if !(o.kappa > 0.5 && o.kappa <= 1) {
			return fmt.Errorf("-kappa %g, want 0.5 < kappa <= 1", o.kappa)
		}
	}
	if o.method == "advi" {
		if o.family != "meanfield" && o.family != "fullrank" {
			return fmt.Errorf("-family %q, want meanfield or fullrank", o.family)
		}
		if !(o.eta > 0) || o.samples < 1 || o.samples > 10000 {
			return fmt.Errorf("-eta %g, -samples %d: want eta > 0 and 1 to 10000 samples", o.eta, o.samples)
		}
	}
	if o.method == "svgd" {
		if o.particles < 2 || o.particles > maxParticles {
			return fmt.Errorf("-particles %d, want 2 to %d", o.particles, maxParticles)
		}
		if !(o.step > 0) {
			return fmt.Errorf("-step %g, want > 0", o.step)
		}
	}
	if o.model == "gmm" && !(o.sigma2 > 0) {
		return fmt.Errorf("-sigma2 %g, want > 0", o.sigma2)
	}
	if o.model == "vbgmm" && !(o.alpha0 > 0) {
		return fmt.Errorf("-alpha0 %g, want > 0", o.alpha0)
	}
	if o.priorSD < 0 || math.IsNaN(o.priorSD) {
		return fmt.Errorf("-prior-sd %g, want > 0", o.priorSD)
	}
	if o.model == "estimators" && (o.samples < 1 || o.samples > 10000 || o.repeats < 2 || o.repeats > 10000) {
		return fmt.Errorf("-samples %d, -repeats %d: want 1 to 10000 samples and 2 to 10000 repeats", o.samples, o.repeats)
	}
	if o.model == "bnn" && (o.hidden < 1 || o.hidden > maxHidden) {
		return fmt.Errorf("-hidden %d, want 1 to %d", o.hidden, maxHidden)
	}
	return nil
}

// Param is one parameter's posterior summary.
type Param struct {
	Name string  `json:"name"`
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// Component is a fitted mixture component.
type Component struct {
	Weight float64     `json:"weight"`
	Active bool        `json:"active"`
	Mean   []float64   `json:"mean"`
	SD     []float64   `json:"sd_of_mean"`
	Cov    [][]float64 `json:"covariance"` // of the data in the component
}

// Result is what the command prints and writes.
type Result struct {
	Model      string      `json:"model"`
	Method     string      `json:"method"`
	Data       string      `json:"data"`
	Rows       int         `json:"rows"`
	Columns    []string    `json:"columns"`
	Params     []Param     `json:"params"`
	ELBO       []float64   `json:"elbo"`
	ELBOSteps  []int       `json:"elbo_steps"`
	ELBONote   string      `json:"elbo_note"`
	Components []Component `json:"components,omitempty"`
	Active     []int       `json:"active_components,omitempty"`
	Assign     []int       `json:"assignments,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
	// estimators: total gradient variance per measured iteration
	Variance map[string][]float64 `json:"gradient_variance,omitempty"`

	points [][]float64 // the data used, for the plot
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "%s by %s on %s (%d rows)\n", r.Model, r.Method, r.Data, r.Rows)
	if len(r.ELBO) > 0 {
		fmt.Fprintf(w, "ELBO %.6g after %d %s (%s)\n", r.ELBO[len(r.ELBO)-1], r.ELBOSteps[len(r.ELBOSteps)-1], "iterations", r.ELBONote)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, n)
	}
	if len(r.Components) > 0 {
		fmt.Fprintf(w, "%-10s %8s  %s\n", "component", "weight", "mean ± sd")
		for k, c := range r.Components {
			if !c.Active {
				continue
			}
			parts := make([]string, len(c.Mean))
			for j := range c.Mean {
				parts[j] = fmt.Sprintf("%.4g ± %.2g", c.Mean[j], c.SD[j])
			}
			fmt.Fprintf(w, "%-10d %8.4f  %s\n", k, c.Weight, strings.Join(parts, ", "))
		}
	}
	if len(r.Params) > 0 {
		show := r.Params
		if len(show) > 40 {
			show = show[:40]
		}
		fmt.Fprintf(w, "%-16s %12s %12s\n", "parameter", "mean", "sd")
		for _, p := range show {
			fmt.Fprintf(w, "%-16s %12.5g %12.4g\n", p.Name, p.Mean, p.SD)
		}
		if len(r.Params) > len(show) {
			fmt.Fprintf(w, "... %d more in -json\n", len(r.Params)-len(show))
		}
	}
}

func readTable(path string) (*vi.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return vi.ReadCSV(f, path, vi.CSVLimits{})
}

// splitTarget returns the features (with a leading intercept unless told
// otherwise) and the target column.
func splitTarget(t *vi.Table, o options, path string) ([][]float64, []float64, []string, error) {
	if len(t.Header) < 2 && o.noIntercept {
		return nil, nil, nil, fmt.Errorf("%s: one column and -no-intercept: no features", path)
	}
	j := len(t.Header) - 1
	if o.target != "" {
		var err error
		if j, err = t.ColumnIndex(o.target); err != nil {
			return nil, nil, nil, fmt.Errorf("-target: %s: %v", path, err)
		}
	}
	var names []string
	if !o.noIntercept {
		names = append(names, "intercept")
	}
	for c, h := range t.Header {
		if c != j {
			names = append(names, h)
		}
	}
	x := make([][]float64, len(t.Rows))
	y := make([]float64, len(t.Rows))
	for i, r := range t.Rows {
		row := make([]float64, 0, len(names))
		if !o.noIntercept {
			row = append(row, 1)
		}
		for c, v := range r {
			if c != j {
				row = append(row, v)
			}
		}
		x[i], y[i] = row, r[j]
	}
	return x, y, names, nil
}

func fit(ctx context.Context, o options, log io.Writer) (*Result, error) {
	t, err := readTable(o.data)
	if err != nil {
		return nil, err
	}
	r := &Result{Model: o.model, Method: o.method, Data: o.data, Rows: len(t.Rows), Columns: t.Header}
	if (o.model == "gmm" || o.model == "vbgmm") && o.k > len(t.Rows) {
		return nil, fmt.Errorf("-k %d: %s has only %d rows of data", o.k, o.data, len(t.Rows))
	}
	switch o.model {
	case "gmm":
		return r, fitGMM(ctx, o, t, r)
	case "vbgmm":
		return r, fitVBGMM(ctx, o, t, r)
	case "blr":
		return r, fitBLR(ctx, o, t, r)
	case "factor":
		return r, fitFactor(ctx, o, t, r)
	case "logistic", "bnn":
		return r, fitClassifier(ctx, o, t, r)
	case "sv":
		return r, fitSV(ctx, o, t, r)
	case "estimators":
		return r, compareEstimators(ctx, o, t, r)
	}
	return nil, fmt.Errorf("unknown model %q", o.model)
}

func steps(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func fitGMM(ctx context.Context, o options, t *vi.Table, r *Result) error {
	if len(t.Header) != 1 {
		return fmt.Errorf("%s: gmm models one column, the file has %d (%s); use vbgmm for several", o.data, len(t.Header), strings.Join(t.Header, ", "))
	}
	x := t.Column(0)
	mo := vi.MixtureOptions{K: o.k, Sigma2: o.sigma2, Seed: o.seed, MaxIter: o.iters}
	var mx *vi.Mixture
	var err error
	if o.method == "svi" {
		var tr *vi.Trace
		mx, tr, err = vi.FitMixtureSVI(ctx, x, mo, vi.SVIOptions{Batch: o.batch, Kappa: o.kappa, Steps: o.iters, Seed: o.seed, EvalEvery: 10})
		if err == nil {
			r.ELBOSteps = tr.Step
			r.ELBONote = "full-data ELBO every 10 SVI steps, q(c) at its optimum"
		}
	} else {
		mx, err = vi.FitMixture(ctx, x, mo)
		if err == nil {
			r.ELBOSteps = steps(len(mx.ELBO))
			r.ELBONote = "after each CAVI sweep"
		}
	}
	if err != nil {
		return err
	}
	r.ELBO = mx.ELBO
	r.Assign = mx.Assign
	counts := make([]float64, o.k)
	for _, a := range mx.Assign {
		counts[a]++
	}
	for k := 0; k < o.k; k++ {
		sd := math.Sqrt(mx.S2[k])
		r.Params = append(r.Params, param(fmt.Sprintf("mu%d", k), mx.M[k], sd))
		r.Components = append(r.Components, Component{Active: true, Weight: counts[k] / float64(len(x)), Mean: []float64{mx.M[k]}, SD: []float64{sd}, Cov: [][]float64{{1}}})
	}
	r.Notes = append(r.Notes, "weights are the fractions of points assigned (the model's weights are fixed at 1/K); component variances are 1 by the model")
	r.points = t.Rows
	return nil
}

func fitVBGMM(ctx context.Context, o options, t *vi.Table, r *Result) error {
	gopt := vi.GMMOptions{K: o.k, Alpha0: o.alpha0, Seed: o.seed, MaxIter: o.iters}
	var g *vi.GMM
	var err error
	if o.method == "svi" {
		var tr *vi.Trace
		g, tr, err = vi.FitGMMSVI(ctx, t.Rows, gopt, vi.SVIOptions{Batch: o.batch, Kappa: o.kappa, Steps: o.iters, Seed: o.seed, EvalEvery: 10})
		if err == nil {
			r.ELBOSteps = tr.Step
			r.ELBONote = "full-data ELBO every 10 SVI steps, q(z) at its optimum"
		}
	} else {
		g, err = vi.FitGMM(ctx, t.Rows, gopt)
		if err == nil {
			r.ELBOSteps = steps(len(g.ELBO))
			r.ELBONote = "after each CAVI sweep (variational EM)"
		}
	}
	if err != nil {
		return err
	}
	r.ELBO = g.ELBO
	r.Assign = g.Assign
	r.Active = g.Active()
	w := g.Weights()
	for k := 0; k < g.K; k++ {
		c := g.Covariance(k)
		comp := Component{Weight: w[k], Mean: g.M[k], Active: w[k] >= 1e-3}
		// sd of the mean, plug-in: (beta_k E[Lambda_k])^-1 (the exact
		// E[(beta_k Lambda_k)^-1] is infinite for an emptied component, nu_k <= D+1).
		for j := 0; j < g.D; j++ {
			comp.SD = append(comp.SD, math.Sqrt(c.At(j, j)/g.Beta[k]))
			row := make([]float64, g.D)
			for i := range row {
				row[i] = c.At(j, i)
			}
			comp.Cov = append(comp.Cov, row)
			if comp.Active {
				r.Params = append(r.Params, param(fmt.Sprintf("mu%d.%s", k, t.Header[j]), g.M[k][j], comp.SD[j]))
			}
		}
		r.Components = append(r.Components, comp)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("%d of %d components active (E[pi_k] >= 1e-3): %v", len(r.Active), g.K, r.Active))
	r.points = t.Rows
	return nil
}

func fitBLR(ctx context.Context, o options, t *vi.Table, r *Result) error {
	x, y, names, err := splitTarget(t, o, o.data)
	if err != nil {
		return err
	}
	b, err := vi.FitBLR(ctx, x, y, vi.BLROptions{MaxIter: o.iters})
	if err != nil {
		return err
	}
	sd := b.SD()
	for j, n := range names {
		r.Params = append(r.Params, param("w."+n, b.Mean[j], sd[j]))
	}
	r.Params = append(r.Params,
		param("alpha (weight precision)", b.EAlpha, math.Sqrt(b.A)/b.B),
		param("beta (noise precision)", b.EBeta, math.Sqrt(b.C)/b.D))
	r.Notes = append(r.Notes, fmt.Sprintf("noise sd 1/sqrt(E[beta]) = %.4g", 1/math.Sqrt(b.EBeta)))
	r.ELBO, r.ELBOSteps, r.ELBONote = b.ELBO, steps(len(b.ELBO)), "after each CAVI sweep"
	return nil
}

func fitFactor(ctx context.Context, o options, t *vi.Table, r *Result) error {
	f, err := vi.FitFactor(ctx, t.Rows, vi.FactorOptions{L: o.k, Seed: o.seed, MaxIter: o.iters})
	if err != nil {
		return fmt.Errorf("%s: %w", o.data, err)
	}
	for d := 0; d < f.D; d++ {
		for l := 0; l < f.L; l++ {
			r.Params = append(r.Params, param(fmt.Sprintf("W.%s.%d", t.Header[d], l), f.W[d][l], math.Sqrt(f.WCov[d].At(l, l))))
		}
	}
	for d := 0; d < f.D; d++ {
		// q(psi) = Gam(a, b): mean a/b, sd sqrt(a)/b.
		r.Params = append(r.Params, param("psi."+t.Header[d], f.A[d]/f.B[d], math.Sqrt(f.A[d])/f.B[d]))
	}
	r.Notes = append(r.Notes, "loadings are identified up to a rotation of the factors; psi are the idiosyncratic precisions")
	r.ELBO, r.ELBOSteps, r.ELBONote = f.ELBO, steps(len(f.ELBO)), "after each CAVI sweep"
	r.Assign = nil
	return nil
}

func fitClassifier(ctx context.Context, o options, t *vi.Table, r *Result) error {
	x, y, names, err := splitTarget(t, o, o.data)
	if err != nil {
		return err
	}
	for i, v := range y {
		if v != 0 && v != 1 {
			return fmt.Errorf("%s: row %d: target %v, want 0 or 1", o.data, i+2, v)
		}
	}
	if o.model == "logistic" && (o.method == "cavi" || o.method == "svi") {
		lo := vi.LogisticOptions{Alpha: 1 / sq(orOne(o.priorSD)), MaxIter: o.iters}
		var l *vi.Logistic
		if o.method == "svi" {
			var tr *vi.Trace
			l, tr, err = vi.FitLogisticSVI(ctx, x, y, lo, vi.SVIOptions{Batch: o.batch, Kappa: o.kappa, Steps: o.iters, Seed: o.seed, EvalEvery: 10})
			if err == nil {
				r.ELBOSteps = tr.Step
			}
		} else {
			l, err = vi.FitLogistic(ctx, x, y, lo)
			if err == nil {
				r.ELBOSteps = steps(len(l.ELBO))
			}
		}
		if err != nil {
			return err
		}
		r.ELBONote = "the Jaakkola-Jordan lower bound on the ELBO, xi at its optimum"
		sd := l.SD()
		for j, n := range names {
			r.Params = append(r.Params, param("w."+n, l.Mean[j], sd[j]))
		}
		r.ELBO = l.ELBO
		return nil
	}
	var m *vi.Model
	if o.model == "bnn" {
		if !o.noIntercept {
			x, names = dropIntercept(x, names)
		}
		m, err = vi.BNNModel(x, y, o.hidden, orOne(o.priorSD))
	} else {
		m, err = vi.LogisticModel(x, y, orOne(o.priorSD))
		if err == nil {
			for j, n := range names {
				m.Params[j] = "w." + n
			}
		}
	}
	if err != nil {
		return err
	}
	return fitBlackBox(ctx, o, m, r)
}

func dropIntercept(x [][]float64, names []string) ([][]float64, []string) {
	out := make([][]float64, len(x))
	for i, r := range x {
		out[i] = r[1:]
	}
	return out, names[1:]
}

func param(name string, mean, sd float64) Param { return Param{Name: name, Mean: mean, SD: sd} }

func sq(v float64) float64 { return v * v }

func orOne(v float64) float64 {
	if v == 0 {
		return 1
	}
	return v
}

func fitSV(ctx context.Context, o options, t *vi.Table, r *Result) error {
	if len(t.Header) != 1 {
		return fmt.Errorf("%s: sv models one column of returns, the file has %d", o.data, len(t.Header))
	}
	if len(t.Rows) > 100000 {
		return fmt.Errorf("%s: %d returns, at most 100000 (one latent volatility each)", o.data, len(t.Rows))
	}
	m, err := vi.SVModel(t.Column(0))
	if err != nil {
		return err
	}
	return fitBlackBox(ctx, o, m, r)
}

// fitBlackBox runs ADVI or SVGD and summarizes 1000 draws (or the particles).
func fitBlackBox(ctx context.Context, o options, m *vi.Model, r *Result) error {
	rng := rand.New(rand.NewPCG(o.seed, 99))
	var draws [][]float64
	switch o.method {
	case "advi":
		a, err := vi.FitADVI(ctx, m, vi.ADVIOptions{FullRank: o.family == "fullrank", Steps: o.iters, Eta: o.eta, Samples: o.samples, Seed: o.seed})
		if err != nil {
			return err
		}
		r.Method = "advi-" + o.family
		r.ELBO, r.ELBOSteps = a.Trace.ELBO, a.Trace.Step
		r.ELBONote = "Monte Carlo estimates (50 draws) in the unconstrained space, log-Jacobian included"
		draws = a.Sample(1000, rng)
	case "svgd":
		s, err := vi.FitSVGD(ctx, m, vi.SVGDOptions{Particles: o.particles, Steps: o.iters, StepSize: o.step, Seed: o.seed})
		if err != nil {
			return err
		}
		draws = s.Theta
		r.ELBONote = "SVGD has no ELBO"
		r.Notes = append(r.Notes, fmt.Sprintf("means and sds over %d particles after %d steps", o.particles, s.Steps))
	}
	mean, sd := vi.MeanSD(draws)
	for j, n := range m.Params {
		r.Params = append(r.Params, param(n, mean[j], sd[j]))
	}
	return nil
}

// compareEstimators fits mean-field ADVI to logistic regression and
// measures each gradient estimator's total variance along the way.
func compareEstimators(ctx context.Context, o options, t *vi.Table, r *Result) error {
	x, y, names, err := splitTarget(t, o, o.data)
	if err != nil {
		return err
	}
	for i, v := range y {
		if v != 0 && v != 1 {
			return fmt.Errorf("%s: row %d: target %v, want 0 or 1", o.data, i+2, v)
		}
	}
	m, err := vi.LogisticModel(x, y, orOne(o.priorSD))
	if err != nil {
		return err
	}
	iters := o.iters
	if iters == 0 {
		iters = 500
	}
	vt, err := vi.CompareEstimators(ctx, m, vi.CompareOptions{Iters: iters, Samples: o.samples, Repeats: o.repeats, Seed: o.seed})
	if err != nil {
		return err
	}
	r.Method = "mean-field ADVI (pathwise steps)"
	r.ELBO, r.ELBOSteps = vt.ELBO, vt.Step
	r.ELBONote = "Monte Carlo estimates (200 draws) at the measured iterations"
	r.Variance = map[string][]float64{}
	for _, e := range []vi.Estimator{vi.Pathwise, vi.Score, vi.ScoreCV} {
		r.Variance[e.String()] = vt.Var[e]
	}
	for j, n := range names {
		r.Params = append(r.Params, param("w."+n, vt.Mu[j], math.Exp(vt.Omega[j])))
	}
	last := len(vt.Step) - 1
	r.Notes = append(r.Notes, fmt.Sprintf("total gradient variance (sum over the %d coordinates of (mu, omega), %d draws per estimate) at iteration %d: pathwise %.4g, score+cv %.4g, score %.4g",
		2*len(names), o.samples, vt.Step[last], vt.Var[vi.Pathwise][last], vt.Var[vi.ScoreCV][last], vt.Var[vi.Score][last]))
	return nil
}
