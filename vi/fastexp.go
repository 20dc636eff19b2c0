package vi

import "math"

const (
	expK32   = 32 / math.Ln2
	expLn2Hi = 6.93147180369123816490e-01 / 32 // ln 2 / 32 in two parts
	expLn2Lo = 1.90821492927058770002e-10 / 32
)

// exp2Table[j] = 2^(j/32).
var exp2Table = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return t
}()

// expNeg is exp(d) for d <= 0, to a few ulp, and 0 below -708. The sweep
// of the mixture calls it K times per point; math.Exp (a call, with its
// special cases) was half the time of a CAVI iteration. With
// n = round(32 d / ln 2), d = n ln2/32 + r, |r| <= ln2/64:
// exp(d) = 2^(n>>5) 2^((n&31)/32) exp(r), exp(r) by its Taylor series to
// r^6/6! (truncation below 4e-18 relative).
func expNeg(d float64) float64 {
	if d < -708 {
		return 0
	}
	// round to nearest: d <= 0 and the conversion truncates toward zero
	// (math.Floor is a call on GOAMD64=v1).
	ni := int64(d*expK32 - 0.5)
	n := float64(ni)
	r := d - n*expLn2Hi - n*expLn2Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * exp2Table[ni&31] * math.Float64frombits(uint64((ni>>5)+1023)<<52)
}
