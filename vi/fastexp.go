package vi

import "math"

// expNeg is exp(d) for d <= 0, to about 2 ulp, and 0 below -708. The sweep
// of the mixture calls it K times per point; math.Exp (not inlined, with
// its special cases) was half the time of a CAVI iteration.
// exp(d) = 2^n exp(r), n = round(d/ln 2), |r| <= ln(2)/2, exp(r) by its
// Taylor series to r^13/13! (truncation below 1e-17 relative).
func expNeg(d float64) float64 {
	if d < -708 {
		return 0
	}
	const (
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		log2e = 1.44269504088896338700e+00
	)
	n := math.Floor(d*log2e + 0.5)
	r := d - n*ln2Hi - n*ln2Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320+
		r*(1.0/362880+r*(1.0/3628800+r*(1.0/39916800+r*(1.0/479001600+r*(1.0/6227020800)))))))))))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}
