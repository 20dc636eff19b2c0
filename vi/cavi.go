package vi

import (
	"context"
	"math"
)

// coordinateAscent runs sweep, one round of coordinate updates that returns
// the ELBO after it, until maxIter rounds, until the ELBO rose by less than
// tol times its size (tol > 0), until sweep reports done, or until ctx
// ends (its error is returned). It returns the ELBO of every round;
// progress, when set, sees each one. Every CAVI fit in this package runs
// this loop.
func coordinateAscent(ctx context.Context, maxIter int, tol float64, progress func(int, float64),
	sweep func(it int) (elbo float64, done bool, err error)) ([]float64, error) {
	var trace []float64
	prev := math.Inf(-1)
	for it := 0; it < maxIter; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, done, err := sweep(it)
		if err != nil {
			return nil, err
		}
		trace = append(trace, e)
		if progress != nil {
			progress(it, e)
		}
		if done || (tol > 0 && e-prev < tol*math.Abs(e)) {
			break
		}
		prev = e
	}
	return trace, nil
}
