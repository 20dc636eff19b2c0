package plotting

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// Plane is a two-dimensional subspace through the origin in which to show
// points of higher dimension.
type Plane struct {
	// Dirs are orthonormal directions; a point v is shown at
	// (v·Dirs[0], v·Dirs[1]).
	Dirs [2][]float64
	// Explained is the fraction of the points' total variance along each
	// direction.
	Explained [2]float64
}

// PrincipalPlane returns the plane of the top two principal components of
// points (at least two points of at least two dimensions). The points are
// centred to find the directions, but the plane passes through the origin,
// so that projections keep their position relative to a prior centred at
// zero. Each direction's sign is chosen to make its largest entry
// positive, which makes the result independent of the SVD's sign choice.
func PrincipalPlane(points [][]float32) (Plane, error) {
	var pl Plane
	if len(points) < 2 {
		return pl, fmt.Errorf("plotting: principal components of %d points, want at least 2", len(points))
	}
	d := len(points[0])
	if d < 2 {
		return pl, fmt.Errorf("plotting: principal plane of %d-dimensional points, want at least 2 dimensions", d)
	}
	a := mat.NewDense(len(points), d, nil)
	for i, p := range points {
		if len(p) != d {
			return pl, fmt.Errorf("plotting: point %d has %d values, want %d", i, len(p), d)
		}
		for j, v := range p {
			a.Set(i, j, float64(v))
		}
	}
	var pc stat.PC
	if !pc.PrincipalComponents(a, nil) {
		return pl, errors.New("plotting: principal component analysis failed")
	}
	var vecs mat.Dense
	pc.VectorsTo(&vecs)
	vars := pc.VarsTo(nil)
	var total float64
	for _, v := range vars {
		total += v
	}
	for k := range 2 {
		dir := mat.Col(nil, k, &vecs)
		big := 0
		for j, v := range dir {
			if math.Abs(v) > math.Abs(dir[big]) {
				big = j
			}
		}
		if dir[big] < 0 {
			for j := range dir {
				dir[j] = -dir[j]
			}
		}
		pl.Dirs[k] = dir
		if total > 0 {
			pl.Explained[k] = vars[k] / total
		}
	}
	return pl, nil
}

// Project returns the coordinates of v in the plane.
func (pl Plane) Project(v []float32) (x, y float64) {
	for j, f := range v {
		x += float64(f) * pl.Dirs[0][j]
		y += float64(f) * pl.Dirs[1][j]
	}
	return x, y
}

// Point returns the point a*Dirs[0] + b*Dirs[1].
func (pl Plane) Point(a, b float64) []float32 {
	out := make([]float32, len(pl.Dirs[0]))
	for j := range out {
		out[j] = float32(a*pl.Dirs[0][j] + b*pl.Dirs[1][j])
	}
	return out
}
