package amortized

import (
	"fmt"
)

// NormalizeFor is [TrainOptions.Normalize] that also refuses options the
// parts of c cannot serve:
//
//   - free bits act on each latent dimension's closed-form KL, which needs a
//     KL registered per dimension for the (family, prior) pair (diag with
//     the standard normal; a full covariance couples the dimensions; a
//     flow's KL is a Monte Carlo estimate of the whole);
//   - the score-function estimator needs log q(z|x) at a z drawn outside the
//     graph, which needs the map from noise to z inverted: closed form for
//     the Gaussian and Householder families, none for the other flows and the
//     auxiliary and mixture families.
func (o TrainOptions) NormalizeFor(c Config) (TrainOptions, error) {
	o, err := o.Normalize()
	if err != nil {
		return o, err
	}
	c, p, err := c.normalize()
	if err != nil {
		return o, err
	}
	e, analytic := lookupKL(p.family, p.prior)
	switch {
	case o.FreeBits > 0 && !(analytic && e.perDim):
		return o, fmt.Errorf("amortized: free bits floor each latent dimension's closed-form KL, which the %s posterior does not have with the %s prior (diag only)", c.Posterior, p.prior)
	case o.Estimator == EstimatorScore && !isInvertible(p.family):
		return o, fmt.Errorf("amortized: the score-function estimator needs log q(z|x) at a given z, and the %s posterior's map from noise to z has no closed-form inverse (diag, fullcov and householder have one)", c.Posterior)
	}
	return o, nil
}

func isInvertible(f Family) bool {
	inv, ok := f.(InvertibleFamily)
	return ok && inv.Invertible()
}

func errNotInvertible(f Family) error {
	return fmt.Errorf("the %s posterior has no log q(z|x) at a given z", f)
}

// CanonicalPosterior returns the canonical form of the posterior s for
// latent dimension latent, as Config.Normalize writes it ("iaf:4" becomes
// "iaf:4:H" with the default H), or an error naming s and the forms.
func CanonicalPosterior(s string, latent int) (string, error) {
	if s == "" {
		s = Diagonal
	}
	f, err := parseFamily(s, Config{Latent: latent, Activation: "relu"})
	if err != nil {
		return "", fmt.Errorf("amortized: %w", err)
	}
	return f.String(), nil
}
