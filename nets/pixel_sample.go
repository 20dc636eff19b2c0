package nets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// PixelHeadChannels is the number of output channels a convolutional head
// needs for a pixel likelihood on C-channel images: P·C, or 10K for the
// RGB mixture (which needs C = 3).
func PixelHeadChannels(kind PixelKind, k, C int) (int, error) {
	if kind == PixelLogisticMixRGB && C != 3 {
		return 0, fmt.Errorf("nets: the RGB logistic mixture needs 3 channels, got %d", C)
	}
	P := PixelParams(kind, k)
	if P <= 0 || ((kind == PixelLogisticMix || kind == PixelLogisticMixRGB) && (k < 1 || k > 256)) {
		return 0, fmt.Errorf("nets: pixel likelihood: kind %d with %d components", kind, k)
	}
	return P * C / unitChannels(kind), nil
}

// pixelRow is one row of parameters read per unit j (a pixel channel, or
// a pixel for the RGB mixture).
type pixelRow struct {
	kind PixelKind
	K    int
	par  []float64 // one row of parameters, PixelParamWidth wide
	U    int       // units per row
}

func (r pixelRow) at(q, j int) float64 { return r.par[q*r.U+j] }

// weights writes the mixture weights softmax(π) of unit j into w (len K).
func (r pixelRow) weights(j int, w []float64) {
	m := math.Inf(-1)
	for k := range w {
		m = max(m, r.at(k, j))
	}
	s := 0.0
	for k := range w {
		w[k] = math.Exp(r.at(k, j) - m)
		s += w[k]
	}
	for k := range w {
		w[k] /= s
	}
}

// logistic is the mean and log-scale of channel c of unit j under
// component k given the levels prev of the unit's earlier channels (only
// the RGB mixture's coupled means read them).
func (r pixelRow) logistic(j, k, c int, prev [3]int) (mu, ls float64) {
	K := r.K
	switch r.kind {
	case PixelLogistic:
		return r.at(0, j), r.at(1, j)
	case PixelLogisticMix:
		return r.at(K+k, j), r.at(2*K+k, j)
	}
	xr, xg := 2*float64(prev[0])/255-1, 2*float64(prev[1])/255-1
	mu = r.at((1+c)*K+k, j)
	switch c {
	case 1:
		mu += math.Tanh(r.at(7*K+k, j)) * xr
	case 2:
		mu += math.Tanh(r.at(8*K+k, j))*xr + math.Tanh(r.at(9*K+k, j))*xg
	}
	return mu, r.at((4+c)*K+k, j)
}

// channelPMF writes into p the distribution of channel c of unit j under
// component k given the levels of the unit's earlier channels.
func (r pixelRow) channelPMF(j, k, c int, prev [3]int, p []float64) {
	if r.kind == PixelCategorical {
		l := make([]float64, Levels)
		for v := range l {
			l[v] = r.at(v, j)
		}
		CategoricalPMF(l, p)
		return
	}
	mu, ls := r.logistic(j, k, c, prev)
	LogisticPMF(mu, ls, p)
}

func newPixelRow(kind PixelKind, k int, params []float64, D int) (pixelRow, error) {
	ch := unitChannels(kind)
	if D <= 0 || D%ch != 0 || len(params) != PixelParamWidth(kind, k, D) || PixelParams(kind, k) <= 0 {
		return pixelRow{}, fmt.Errorf("nets: pixel likelihood: %d parameters for %d values, want %d", len(params), D, PixelParamWidth(kind, k, D))
	}
	return pixelRow{kind: kind, K: max(k, 1), par: params, U: D / ch}, nil
}

// PixelSample draws one image (D values v/255 into out) from the pixel
// likelihood with the parameters of one row. Exact: a component from the
// mixture weights; then a discretized logistic level as the bin of a
// continuous logistic draw μ + e^s log(u/(1-u)) (bins partition the line,
// the edge bins taking the tails, so the bin of a draw has exactly the
// discretized probabilities), in channel order for the RGB mixture (green's
// mean from red's level, blue's from both); a categorical level by
// inverse CDF over its 256 probabilities.
func PixelSample(kind PixelKind, k int, params []float64, rng *rand.Rand, out []float64) error {
	r, err := newPixelRow(kind, k, params, len(out))
	if err != nil {
		return err
	}
	ch := unitChannels(kind)
	p, w := make([]float64, Levels), make([]float64, r.K)
	for j := range r.U {
		comp := 0
		if kind == PixelLogisticMix || kind == PixelLogisticMixRGB {
			r.weights(j, w)
			comp = drawIndex(w, rng.Float64())
		}
		var lv [3]int
		for c := range ch {
			if kind == PixelCategorical {
				r.channelPMF(j, comp, c, lv, p)
				lv[c] = drawIndex(p, rng.Float64())
			} else {
				mu, ls := r.logistic(j, comp, c, lv)
				lv[c] = logisticDraw(mu, ls, rng)
			}
			out[c*r.U+j] = float64(lv[c]) / 255
		}
	}
	return nil
}

// logisticDraw is the level whose bin holds a logistic draw.
func logisticDraw(mu, ls float64, rng *rand.Rand) int {
	ls = min(max(ls, MinLogScale), MaxLogScale)
	u := rng.Float64()
	for u == 0 {
		u = rng.Float64()
	}
	x := mu + math.Exp(ls)*(math.Log(u)-math.Log1p(-u))
	v := math.Round((x + 1) * 127.5)
	if !(v > 0) { // also NaN, impossible with finite parameters
		return 0
	}
	return int(min(v, Levels-1))
}

// drawIndex returns the first index whose cumulative weight exceeds u·sum.
func drawIndex(w []float64, u float64) int {
	s := 0.0
	for _, v := range w {
		s += v
	}
	u *= s
	acc := 0.0
	for i, v := range w {
		acc += v
		if u < acc {
			return i
		}
	}
	return len(w) - 1
}

// PixelMean writes the mean E[v]/255 of every value into out. It is exact
// except for the green and blue channels of the RGB mixture, where each
// component's conditional mean is taken at the component's mean of the
// earlier channels, rounded to a level (the exact value needs 256² terms
// per component and pixel).
func PixelMean(kind PixelKind, k int, params []float64, out []float64) error {
	r, err := newPixelRow(kind, k, params, len(out))
	if err != nil {
		return err
	}
	ch := unitChannels(kind)
	p, w := make([]float64, Levels), make([]float64, r.K)
	mean := func() float64 {
		m := 0.0
		for v, pv := range p {
			m += float64(v) * pv
		}
		return m
	}
	for j := range r.U {
		w[0] = 1
		if kind == PixelLogisticMix || kind == PixelLogisticMixRGB {
			r.weights(j, w)
		}
		for c := range ch {
			out[c*r.U+j] = 0
		}
		for comp := range r.K {
			var lv [3]int
			for c := range ch {
				r.channelPMF(j, comp, c, lv, p)
				m := mean()
				lv[c] = int(math.Round(m))
				out[c*r.U+j] += w[comp] * m / 255
			}
		}
	}
	return nil
}
