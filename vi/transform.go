package vi

import (
	"errors"
	"fmt"
	"math"
)

// ConstraintKind names the support of a block of parameters and the map
// from the real line used by ADVI and SVGD (Kucukelbir et al. 2017, 2.3).
type ConstraintKind int

const (
	Real     ConstraintKind = iota // identity
	Positive                       // theta = Lo + exp(zeta)
	Interval                       // theta = Lo + (Hi - Lo) sigmoid(zeta)
	Simplex                        // stick-breaking: Size coordinates from Size-1 free ones
)

func (k ConstraintKind) String() string {
	switch k {
	case Real:
		return "real"
	case Positive:
		return "positive"
	case Interval:
		return "interval"
	case Simplex:
		return "simplex"
	}
	return fmt.Sprintf("ConstraintKind(%d)", int(k))
}

// Constraint is a block of Size parameters with one support.
type Constraint struct {
	Kind   ConstraintKind
	Size   int     // constrained coordinates (for Simplex, K >= 2 of them)
	Lo, Hi float64 // Positive: Lo; Interval: (Lo, Hi)
}

// Transform maps the unconstrained zeta (FreeDim) to the constrained theta
// (Dim), block by block, with log|det J| of the map on the free coordinates:
//
//	log:            log|J| = zeta
//	logit:          log|J| = log(Hi-Lo) + log sigmoid(zeta) + log sigmoid(-zeta)
//	stick-breaking: z_k = sigmoid(zeta_k - log(K-1-k)), theta_k = r_k z_k,
//	                r_{k+1} = r_k (1 - z_k), r_0 = 1, theta_{K-1} = r_{K-1};
//	                log|J| = sum_k [log z_k + log(1-z_k) + log r_k]
//
// (the Stan reference manual's stick-breaking, centred so that zeta = 0 is
// the uniform point).
type Transform struct {
	blocks       []Constraint
	dim, freeDim int
}

// NewTransform checks the blocks.
func NewTransform(blocks ...Constraint) (*Transform, error) {
	t := &Transform{blocks: blocks}
	for i, b := range blocks {
		if b.Size < 1 {
			return nil, fmt.Errorf("vi: constraint %d (%v) has size %d", i, b.Kind, b.Size)
		}
		switch b.Kind {
		case Real, Positive:
		case Interval:
			if !(b.Hi > b.Lo) {
				return nil, fmt.Errorf("vi: constraint %d: interval (%g, %g) is empty", i, b.Lo, b.Hi)
			}
		case Simplex:
			if b.Size < 2 {
				return nil, fmt.Errorf("vi: constraint %d: a simplex needs 2 or more coordinates, got %d", i, b.Size)
			}
			t.freeDim--
		default:
			return nil, fmt.Errorf("vi: constraint %d: unknown kind %v", i, b.Kind)
		}
		t.dim += b.Size
		t.freeDim += b.Size
	}
	if t.dim == 0 {
		return nil, errors.New("vi: no parameters")
	}
	return t, nil
}

// Dim is the number of constrained coordinates, FreeDim of unconstrained ones.
func (t *Transform) Dim() int     { return t.dim }
func (t *Transform) FreeDim() int { return t.freeDim }

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// Forward writes theta = T(zeta) and returns log|det J|.
func (t *Transform) Forward(zeta, theta []float64) float64 {
	var ld float64
	i, j := 0, 0 // zeta and theta offsets
	for _, b := range t.blocks {
		switch b.Kind {
		case Real:
			copy(theta[j:j+b.Size], zeta[i:i+b.Size])
		case Positive:
			for k := 0; k < b.Size; k++ {
				theta[j+k] = b.Lo + math.Exp(zeta[i+k])
				ld += zeta[i+k]
			}
		case Interval:
			w := b.Hi - b.Lo
			for k := 0; k < b.Size; k++ {
				z := zeta[i+k]
				theta[j+k] = b.Lo + w*sigmoid(z)
				ld += math.Log(w) + logSigmoid(z) + logSigmoid(-z)
			}
		case Simplex:
			K := b.Size
			r := 1.0
			for k := 0; k < K-1; k++ {
				a := zeta[i+k] - math.Log(float64(K-1-k))
				z := sigmoid(a)
				theta[j+k] = r * z
				ld += logSigmoid(a) + logSigmoid(-a) + math.Log(r)
				r *= 1 - z
			}
			theta[j+K-1] = r
			i += K - 1
			j += K
			continue
		}
		i += b.Size
		j += b.Size
	}
	return ld
}

// Inverse writes zeta = T^-1(theta); theta must lie inside the support.
func (t *Transform) Inverse(theta, zeta []float64) error {
	i, j := 0, 0
	for bi, b := range t.blocks {
		switch b.Kind {
		case Real:
			copy(zeta[i:i+b.Size], theta[j:j+b.Size])
		case Positive:
			for k := 0; k < b.Size; k++ {
				v := theta[j+k] - b.Lo
				if !(v > 0) {
					return fmt.Errorf("vi: block %d coordinate %d = %g, want > %g", bi, k, theta[j+k], b.Lo)
				}
				zeta[i+k] = math.Log(v)
			}
		case Interval:
			for k := 0; k < b.Size; k++ {
				u := (theta[j+k] - b.Lo) / (b.Hi - b.Lo)
				if !(u > 0 && u < 1) {
					return fmt.Errorf("vi: block %d coordinate %d = %g, want inside (%g, %g)", bi, k, theta[j+k], b.Lo, b.Hi)
				}
				zeta[i+k] = math.Log(u) - math.Log1p(-u)
			}
		case Simplex:
			K := b.Size
			r := 1.0
			for k := 0; k < K-1; k++ {
				z := theta[j+k] / r
				if !(z > 0 && z < 1) {
					return fmt.Errorf("vi: block %d is not inside the simplex (coordinate %d)", bi, k)
				}
				zeta[i+k] = math.Log(z) - math.Log1p(-z) + math.Log(float64(K-1-k))
				r -= theta[j+k]
			}
			i += K - 1
			j += K
			continue
		}
		i += b.Size
		j += b.Size
	}
	return nil
}

// Backward writes into gZeta the gradient with respect to zeta of
// f(T(zeta)) + log|det J(zeta)|, given gTheta = grad f at theta = T(zeta).
func (t *Transform) Backward(zeta, theta, gTheta, gZeta []float64) {
	i, j := 0, 0
	for _, b := range t.blocks {
		switch b.Kind {
		case Real:
			copy(gZeta[i:i+b.Size], gTheta[j:j+b.Size])
		case Positive:
			for k := 0; k < b.Size; k++ {
				gZeta[i+k] = gTheta[j+k]*(theta[j+k]-b.Lo) + 1
			}
		case Interval:
			w := b.Hi - b.Lo
			for k := 0; k < b.Size; k++ {
				s := sigmoid(zeta[i+k])
				gZeta[i+k] = gTheta[j+k]*w*s*(1-s) + 1 - 2*s
			}
		case Simplex:
			// theta_k = r_k z_k, theta_{K-1} = r_{K-1}, r_k = prod_{l<k} (1-z_l):
			// d theta_k / d zeta_l = -theta_k z_l (l < k), r_k z_k (1-z_k) (l = k).
			K := b.Size
			z := make([]float64, K-1)
			for k := range z {
				z[k] = sigmoid(zeta[i+k] - math.Log(float64(K-1-k)))
			}
			// suffix sums of gTheta_k theta_k over k > l, the last coordinate included
			tail := gTheta[j+K-1] * theta[j+K-1]
			for l := K - 2; l >= 0; l-- {
				rl := theta[j+l] / z[l]
				g := gTheta[j+l]*rl*z[l]*(1-z[l]) - z[l]*tail
				// log|J|: d/d zeta_l of log z_l + log(1-z_l) = 1 - 2 z_l, and
				// of sum_{k>l} log r_k = -z_l (K-2-l) (r_k for k = l+1..K-2).
				g += 1 - 2*z[l] - z[l]*float64(K-2-l)
				gZeta[i+l] = g
				tail += gTheta[j+l] * theta[j+l]
			}
			i += K - 1
			j += K
			continue
		}
		i += b.Size
		j += b.Size
	}
}
