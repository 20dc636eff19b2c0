package plotting

import (
	"context"
	"math"
	"slices"
)

// sparseP holds symmetric affinities in compressed rows: the neighbours of
// point i are col[row[i]:row[i+1]] with values val[...].
type sparseP struct {
	row []int
	col []int32
	val []float64
}

// sparseJointP is jointP restricted to each point's k = min(n-1, 3 perplexity)
// nearest neighbours (van der Maaten 2014): p_j|i is calibrated over them
// only, and p_ij = (p_j|i + p_i|j) / 2n over the union of both lists.
func sparseJointP(ctx context.Context, points [][]float32, perp float64) (*sparseP, error) {
	n := len(points)
	k := min(n-1, int(3*perp))
	nbr := make([][]int32, n)
	cond := make([][]float64, n)
	err := parallelRows(ctx, n, func(i int, d2 []float64) {
		for j := range n {
			var s float64
			for c, v := range points[i] {
				e := float64(v) - float64(points[j][c])
				s += e * e
			}
			d2[j] = s
		}
		idx := make([]int32, 0, n-1)
		for j := range n {
			if j != i {
				idx = append(idx, int32(j))
			}
		}
		slices.SortFunc(idx, func(a, b int32) int {
			if c := cmpFloat(d2[a], d2[b]); c != 0 {
				return c
			}
			return int(a - b) // ties by index: deterministic
		})
		idx = idx[:k]
		sub := make([]float64, k+1) // the neighbours' distances, with i itself last at 0 weight
		for q, j := range idx {
			sub[q] = d2[j]
		}
		p := conditionalP(sub, k, perp)
		nbr[i], cond[i] = idx, p[:k]
	})
	if err != nil {
		return nil, err
	}
	// Symmetrize: p_ij gets p_j|i from row i and p_i|j from row j.
	type entry struct {
		j int32
		v float64
	}
	rows := make([][]entry, n)
	for i := range n {
		for q, j := range nbr[i] {
			v := cond[i][q] / float64(2*n)
			rows[i] = append(rows[i], entry{j, v})
			rows[j] = append(rows[j], entry{int32(i), v})
		}
	}
	sp := &sparseP{row: make([]int, n+1)}
	for i, r := range rows {
		slices.SortFunc(r, func(a, b entry) int { return int(a.j - b.j) })
		for q := 0; q < len(r); q++ {
			if q+1 < len(r) && r[q+1].j == r[q].j { // in both lists: sum the halves
				r[q+1].v += r[q].v
				continue
			}
			sp.col = append(sp.col, r[q].j)
			sp.val = append(sp.val, r[q].v)
		}
		sp.row[i+1] = len(sp.col)
	}
	return sp, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quadtree is a Barnes-Hut tree over the map points: each node holds the
// number of points below it and their centre of mass.
type quadtree struct {
	nodes []qnode
	y     [][2]float64
}

type qnode struct {
	cx, cy, half float64 // the square's centre and half side
	n            int
	mx, my       float64  // centre of mass
	child        [4]int32 // 0: none
	point        int32    // the single point of a leaf, or -1
}

// maxDepth stops splitting coincident points, which would recurse forever;
// they stay together in one leaf. (Points closer than 2^-48 of the map's
// side that are not equal share such a leaf too, and then count one another
// at distance ~0: an error of one w ≈ 1 per such point in Z, negligible.)
const maxDepth = 48

func newQuadtree(y [][2]float64) *quadtree {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range y {
		minX, maxX = min(minX, p[0]), max(maxX, p[0])
		minY, maxY = min(minY, p[1]), max(maxY, p[1])
	}
	half := max(maxX-minX, maxY-minY)/2 + 1e-5
	t := &quadtree{y: y, nodes: make([]qnode, 1, 2*len(y))}
	t.nodes[0] = qnode{cx: (minX + maxX) / 2, cy: (minY + maxY) / 2, half: half, point: -1}
	for i := range y {
		t.insert(0, int32(i), 0)
	}
	return t
}

func (t *quadtree) insert(ni int, i int32, depth int) {
	p := t.y[i]
	nd := &t.nodes[ni]
	nd.mx = (nd.mx*float64(nd.n) + p[0]) / float64(nd.n+1)
	nd.my = (nd.my*float64(nd.n) + p[1]) / float64(nd.n+1)
	nd.n++
	if nd.n == 1 {
		nd.point = i
		return
	}
	if depth >= maxDepth {
		return // coincident points share the leaf
	}
	if nd.point >= 0 { // a leaf becomes an inner node: push its point down
		old := nd.point
		nd.point = -1
		t.insertChild(ni, old, depth)
	}
	t.insertChild(ni, i, depth)
}

func (t *quadtree) insertChild(ni int, i int32, depth int) {
	p := t.y[i]
	nd := t.nodes[ni]
	q := 0
	cx, cy, h := nd.cx, nd.cy, nd.half/2
	if p[0] >= nd.cx {
		q |= 1
		cx += h
	} else {
		cx -= h
	}
	if p[1] >= nd.cy {
		q |= 2
		cy += h
	} else {
		cy -= h
	}
	c := nd.child[q]
	if c == 0 {
		c = int32(len(t.nodes))
		t.nodes = append(t.nodes, qnode{cx: cx, cy: cy, half: h, point: -1})
		t.nodes[ni].child[q] = c
	}
	t.insert(int(c), i, depth+1)
}

// repulsion returns Σ_j w_ij and Σ_j w_ij² (y_i - y_j) over j ≠ i, with
// w = (1 + |y_i - y_j|²)^-1, summarizing a cell by its centre of mass when
// its side / distance < theta (theta 0: exact).
func (t *quadtree) repulsion(i int, theta float64) (z, f0, f1 float64) {
	var acc [3]float64
	t.visit(0, i, t.y[i], theta*theta, &acc)
	return acc[0], acc[1], acc[2]
}

// visit adds node ni's share to acc = (z, f0, f1); theta2 is theta².
func (t *quadtree) visit(ni int32, i int, yi [2]float64, theta2 float64, acc *[3]float64) {
	nd := &t.nodes[ni]
	if nd.n == 0 {
		return
	}
	d0, d1 := yi[0]-nd.mx, yi[1]-nd.my
	d2 := d0*d0 + d1*d1
	leaf := nd.child == [4]int32{}
	if !leaf && 4*nd.half*nd.half >= theta2*d2 { // side >= theta * distance: open the cell
		for _, c := range nd.child {
			if c != 0 {
				t.visit(c, i, yi, theta2, acc)
			}
		}
		return
	}
	cnt := float64(nd.n)
	if leaf && nd.n == 1 && int(nd.point) == i {
		return
	}
	if leaf && d2 == 0 {
		cnt-- // i among coincident points: the others are at distance 0
		if cnt <= 0 {
			return
		}
	}
	w := 1 / (1 + d2)
	acc[0] += cnt * w
	acc[1] += cnt * w * w * d0
	acc[2] += cnt * w * w * d1
}

// bhGradient is gradient with sparse P and Barnes-Hut repulsion.
func bhGradient(P *sparseP, y [][2]float64, ex, theta float64, grad [][2]float64, wantCost bool) float64 {
	n := len(y)
	t := newQuadtree(y)
	zRow := make([]float64, n)
	rep := make([][2]float64, n)
	attr := make([][2]float64, n)
	_ = parallelRows(context.Background(), n, func(i int, _ []float64) {
		z, f0, f1 := t.repulsion(i, theta)
		var a0, a1 float64
		for q := P.row[i]; q < P.row[i+1]; q++ {
			j := P.col[q]
			d0, d1 := y[i][0]-y[j][0], y[i][1]-y[j][1]
			pw := P.val[q] / (1 + d0*d0 + d1*d1)
			a0 += pw * d0
			a1 += pw * d1
		}
		zRow[i], rep[i], attr[i] = z, [2]float64{f0, f1}, [2]float64{a0, a1}
	})
	var Z float64
	for _, z := range zRow {
		Z += z
	}
	for i := range grad {
		grad[i][0] = 4 * (ex*attr[i][0] - rep[i][0]/Z)
		grad[i][1] = 4 * (ex*attr[i][1] - rep[i][1]/Z)
	}
	if !wantCost {
		return math.NaN()
	}
	// The same cost as gradient's, over the sparse p (Z approximated).
	var c float64
	for i := range n {
		for q := P.row[i]; q < P.row[i+1]; q++ {
			j := P.col[q]
			p := ex * P.val[q]
			d0, d1 := y[i][0]-y[j][0], y[i][1]-y[j][1]
			c += p * (math.Log(p) + math.Log(1+d0*d0+d1*d1))
		}
	}
	return c + math.Log(Z)
}
