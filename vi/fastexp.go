package vi

import "math"

const (
	expK      = 256 / math.Ln2
	expLn2Hi  = 6.93147180369123816490e-01 / 256 // ln 2 / 256 in two parts; Hi has 21
	expLn2Lo  = 1.90821492927058770002e-10 / 256 // trailing zero bits, so n*Hi is exact
	expMinArg = -708                             // smallest d with a normal 2^(n>>8)
)

// exp2Table[j] = 2^(j/256), 2 KB: it stays in L1 during a sweep.
var exp2Table = func() (t [256]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 256)
	}
	return t
}()

// expRed is exp(d) for expMinArg <= d <= 0 (unchecked; the caller clamps),
// with no branch. With n = round(256 d / ln 2), d = n ln2/256 + r,
// |r| <= ln2/512: exp(d) = 2^(n>>8) 2^((n&255)/256) exp(r), exp(r) by its
// Taylor series to r^4/4! (truncation below 4e-17 relative). TestExpNeg
// bounds the error against math.Exp by 1e-15 relative (it is a few ulp:
// the table entry, Horner and two products each round once).
func expRed(d float64) float64 {
	// round to nearest: d <= 0 and the conversion truncates toward zero
	// (math.Floor is a call on GOAMD64=v1).
	ni := int64(d*expK - 0.5)
	n := float64(ni)
	r := d - n*expLn2Hi - n*expLn2Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24))))
	return p * exp2Table[ni&255] * math.Float64frombits(uint64((ni>>8)+1023)<<52)
}

// expNeg is exp(d) for d <= 0, to a few ulp, and 0 below expMinArg.
// math.Exp (a call, with its special cases) was half the time of a CAVI
// iteration of the mixtures.
func expNeg(d float64) float64 {
	if d < expMinArg {
		return 0
	}
	return expRed(d)
}
