package vi

import (
	"errors"
	"fmt"
	"math"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Density is an unnormalized log density log p(x, theta) over constrained
// parameters theta, with its gradient.
type Density interface {
	Dim() int
	// LogProb returns log p at theta and writes d log p / d theta into grad
	// (len Dim) when grad is not nil.
	LogProb(theta, grad []float64) (float64, error)
}

// FuncDensity is a Density from a Go function.
type FuncDensity struct {
	D int
	F func(theta, grad []float64) float64
}

func (f FuncDensity) Dim() int { return f.D }

func (f FuncDensity) LogProb(theta, grad []float64) (float64, error) {
	if grad == nil {
		grad = make([]float64, f.D)
	}
	return f.F(theta, grad), nil
}

// GraphDensity is a log density written as a gorgonia expression of the
// parameter vector; gorgonia's symbolic differentiation gives the gradient.
// One tape machine serves all calls, so calls are serialized.
type GraphDensity struct {
	mu    sync.Mutex
	d     int
	theta *G.Node
	logp  *G.Node
	val   G.Value
	vm    G.VM
}

// Builder builds log p(x, theta) from theta, a float64 vector node of the
// graph; data enter as constants.
type Builder func(g *G.ExprGraph, theta *G.Node) (*G.Node, error)

// NewGraphDensity builds the graph of a d-parameter log density.
func NewGraphDensity(d int, build Builder) (*GraphDensity, error) {
	if d < 1 {
		return nil, fmt.Errorf("vi: graph density with %d parameters", d)
	}
	g := G.NewGraph()
	theta := G.NewVector(g, tensor.Float64, G.WithShape(d), G.WithName("theta"),
		G.WithValue(tensor.New(tensor.WithShape(d), tensor.Of(tensor.Float64))))
	logp, err := build(g, theta)
	if err != nil {
		return nil, fmt.Errorf("vi: building the log density: %w", err)
	}
	if !logp.IsScalar() {
		return nil, fmt.Errorf("vi: the log density has shape %v, want a scalar", logp.Shape())
	}
	gd := &GraphDensity{d: d, theta: theta, logp: logp}
	G.Read(logp, &gd.val)
	if _, err := G.Grad(logp, theta); err != nil {
		return nil, fmt.Errorf("vi: differentiating the log density: %w", err)
	}
	gd.vm = G.NewTapeMachine(g, G.BindDualValues(theta))
	return gd, nil
}

func (gd *GraphDensity) Dim() int { return gd.d }

func (gd *GraphDensity) LogProb(theta, grad []float64) (float64, error) {
	if len(theta) != gd.d {
		return 0, fmt.Errorf("vi: %d parameters, want %d", len(theta), gd.d)
	}
	gd.mu.Lock()
	defer gd.mu.Unlock()
	copy(gd.theta.Value().Data().([]float64), theta)
	defer gd.vm.Reset()
	if err := gd.vm.RunAll(); err != nil {
		return 0, err
	}
	v, ok := gd.val.Data().(float64)
	if !ok {
		return 0, errors.New("vi: the log density is not a float64")
	}
	gv, err := gd.theta.Grad()
	if err != nil {
		return 0, err
	}
	gs := gv.Data().([]float64)
	if grad != nil {
		copy(grad, gs)
	}
	clear(gs) // the tape machine accumulates into it
	return v, nil
}

// Model is a density with the supports of its parameters.
type Model struct {
	Name        string
	Density     Density
	Constraints []Constraint
	Params      []string // names of the constrained coordinates
	// Init, if not nil, is a starting point inside the support that ADVI
	// and SVGD use by default (a model-specific guess from the data).
	Init []float64
}

// nn wraps gorgonia calls that return (node, error) for a builder.
type nn struct{ err error }

func (b *nn) n(x *G.Node, err error) *G.Node {
	if err != nil && b.err == nil {
		b.err = err
	}
	return x
}

func constVec(v []float64, name string) *G.Node {
	return G.NewConstant(tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(append([]float64(nil), v...))), G.WithName(name))
}

func constMat(x [][]float64, name string) *G.Node {
	d := len(x[0])
	back := make([]float64, 0, len(x)*d)
	for _, r := range x {
		back = append(back, r...)
	}
	return G.NewConstant(tensor.New(tensor.WithShape(len(x), d), tensor.WithBacking(back)), G.WithName(name))
}

// gaussPrior is -sum(theta^2)/(2 s^2) (constants dropped).
func (b *nn) gaussPrior(x *G.Node, s float64) *G.Node {
	return b.n(G.Mul(b.n(G.Sum(b.n(G.Square(x)))), G.NewConstant(-0.5/(s*s))))
}

// bernoulliLogLik is sum_n [y_n a_n - softplus(a_n)].
func (b *nn) bernoulliLogLik(logits *G.Node, y []float64) *G.Node {
	yn := constVec(y, fmt.Sprintf("y%d", len(y)))
	return b.n(G.Sub(b.n(G.Sum(b.n(G.HadamardProd(yn, logits)))), b.n(G.Sum(b.n(G.Softplus(logits))))))
}

// LogisticModel is Bayesian logistic regression, y_n ~ Bern(sigmoid(w^T x_n)),
// w ~ N(0, PriorSD^2 I), as a gorgonia expression. Include a column of ones
// for an intercept.
func LogisticModel(x [][]float64, y []float64, priorSD float64) (*Model, error) {
	d, err := checkLogistic(x, y)
	if err != nil {
		return nil, err
	}
	gd, err := NewGraphDensity(d, func(g *G.ExprGraph, w *G.Node) (*G.Node, error) {
		var b nn
		logits := b.n(G.Mul(constMat(x, "X"), w))
		lp := b.n(G.Add(b.bernoulliLogLik(logits, y), b.gaussPrior(w, priorSD)))
		return lp, b.err
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, d)
	for i := range names {
		names[i] = fmt.Sprintf("w%d", i)
	}
	return &Model{Name: "logistic", Density: gd, Constraints: []Constraint{{Kind: Real, Size: d}}, Params: names}, nil
}

// BNNModel is a one-hidden-layer Bayesian neural network classifier,
// y_n ~ Bern(sigmoid(v^T tanh(W x_n + b) + c)), every weight ~ N(0, PriorSD^2).
// Parameters in order: W (H rows of P), b (H), v (H), c.
func BNNModel(x [][]float64, y []float64, hidden int, priorSD float64) (*Model, error) {
	p, err := checkLogistic(x, y)
	if err != nil {
		return nil, err
	}
	if hidden < 1 || hidden > 1000 {
		return nil, fmt.Errorf("vi: %d hidden units, want 1 to 1000", hidden)
	}
	d := hidden*p + 2*hidden + 1
	gd, err := NewGraphDensity(d, func(g *G.ExprGraph, th *G.Node) (*G.Node, error) {
		var b nn
		X := constMat(x, "X")
		var logits *G.Node
		for j := 0; j < hidden; j++ {
			wj := b.n(G.Slice(th, G.S(j*p, (j+1)*p)))
			bj := b.n(G.Slice(th, G.S(hidden*p+j)))
			vj := b.n(G.Slice(th, G.S(hidden*p+hidden+j)))
			h := b.n(G.Tanh(b.n(G.Add(b.n(G.Mul(X, wj)), bj))))
			t := b.n(G.Mul(h, vj))
			if logits == nil {
				logits = t
			} else {
				logits = b.n(G.Add(logits, t))
			}
		}
		c := b.n(G.Slice(th, G.S(d-1)))
		logits = b.n(G.Add(logits, c))
		lp := b.n(G.Add(b.bernoulliLogLik(logits, y), b.gaussPrior(th, priorSD)))
		return lp, b.err
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for j := 0; j < hidden; j++ {
		for i := 0; i < p; i++ {
			names = append(names, fmt.Sprintf("W%d.%d", j, i))
		}
	}
	for j := 0; j < hidden; j++ {
		names = append(names, fmt.Sprintf("b%d", j))
	}
	for j := 0; j < hidden; j++ {
		names = append(names, fmt.Sprintf("v%d", j))
	}
	names = append(names, "c")
	return &Model{Name: "bnn", Density: gd, Constraints: []Constraint{{Kind: Real, Size: d}}, Params: names}, nil
}

// SV priors: mu ~ N(0, 10^2), phi ~ Uniform(-1, 1), sigma ~ Exponential(rate 5).
const (
	svMuSD      = 10.0
	svSigmaRate = 5.0
)

// SVModel is the stochastic-volatility model with AR(1) log-volatility:
// y_t ~ N(0, exp(h_t)), h_t = mu + phi (h_{t-1} - mu) + sigma eta_t,
// h_1 ~ N(mu, sigma^2/(1-phi^2)) (stationary), with the priors above.
// Parameters: mu (real), phi (interval (-1, 1)), sigma (positive), h_1..h_T.
func SVModel(y []float64) (*Model, error) {
	T := len(y)
	if T < 3 {
		return nil, fmt.Errorf("vi: %d returns, want at least 3", T)
	}
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("vi: return %d is %v", i, v)
		}
	}
	y2 := make([]float64, T)
	for i, v := range y {
		y2[i] = v * v
	}
	gd, err := NewGraphDensity(3+T, func(g *G.ExprGraph, th *G.Node) (*G.Node, error) {
		var b nn
		c := func(v float64) *G.Node { return G.NewConstant(v) }
		mu := b.n(G.Slice(th, G.S(0)))
		phi := b.n(G.Slice(th, G.S(1)))
		sigma := b.n(G.Slice(th, G.S(2)))
		h := b.n(G.Slice(th, G.S(3, 3+T)))
		// log N(y_t | 0, e^h_t) = -(log 2 pi + h_t + y_t^2 e^-h_t)/2
		lik := b.n(G.Sum(b.n(G.Add(h, b.n(G.HadamardProd(constVec(y2, "y2"), b.n(G.Exp(b.n(G.Neg(h))))))))))
		lik = b.n(G.Mul(lik, c(-0.5)))
		prev := b.n(G.Slice(h, G.S(0, T-1)))
		next := b.n(G.Slice(h, G.S(1, T)))
		// resid = next - mu - phi (prev - mu)
		resid := b.n(G.Sub(b.n(G.Sub(next, mu)), b.n(G.Mul(b.n(G.Sub(prev, mu)), phi))))
		ss := b.n(G.Sum(b.n(G.Square(resid))))
		s2 := b.n(G.Square(sigma))
		ar := b.n(G.Sub(b.n(G.Mul(b.n(G.Div(ss, s2)), c(-0.5))), b.n(G.Mul(b.n(G.Log(sigma)), c(float64(T-1))))))
		// stationary start: log N(h_1 | mu, sigma^2/(1-phi^2))
		h0 := b.n(G.Slice(h, G.S(0)))
		omp := b.n(G.Sub(c(1), b.n(G.Square(phi))))
		d0 := b.n(G.Square(b.n(G.Sub(h0, mu))))
		start := b.n(G.Sub(b.n(G.Mul(b.n(G.Log(omp)), c(0.5))), b.n(G.Log(sigma))))
		start = b.n(G.Sub(start, b.n(G.Div(b.n(G.Mul(b.n(G.Mul(d0, omp)), c(0.5))), s2))))
		prior := b.n(G.Sub(b.n(G.Mul(b.n(G.Square(mu)), c(-0.5/(svMuSD*svMuSD)))), b.n(G.Mul(sigma, c(svSigmaRate)))))
		lp := b.n(G.Add(b.n(G.Add(lik, ar)), b.n(G.Add(start, prior))))
		return lp, b.err
	})
	if err != nil {
		return nil, err
	}
	// start: h_t = log(y_t^2 + 0.1 var(y)) (the volatility each return alone
	// suggests), phi = 0.9, sigma = 0.3, mu = mean of h. A mean-field q
	// still drifts to small phi and large sigma: independent q(h_t) cannot
	// hold the coupling of neighbouring h, and their variances enter the
	// ELBO as phi^2 Var[h_{t-1}] (on 1,000 returns simulated with phi =
	// 0.97, sigma = 0.3 it ends near phi = 0.2, sigma = 1.3).
	var vy float64
	for _, v := range y {
		vy += v * v / float64(T)
	}
	init := make([]float64, 3+T)
	var mh float64
	for t, v := range y {
		init[3+t] = math.Log(v*v + 0.1*vy + 1e-300)
		mh += init[3+t] / float64(T)
	}
	init[0], init[1], init[2] = mh, 0.9, 0.3
	names := []string{"mu", "phi", "sigma"}
	for t := 0; t < T; t++ {
		names = append(names, fmt.Sprintf("h%d", t))
	}
	return &Model{Name: "sv", Density: gd, Params: names, Init: init, Constraints: []Constraint{
		{Kind: Real, Size: 1}, {Kind: Interval, Size: 1, Lo: -1, Hi: 1}, {Kind: Positive, Size: 1}, {Kind: Real, Size: T}}}, nil
}
