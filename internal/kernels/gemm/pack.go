package gemm

// Packing. A packed block is a sequence of micro-panels of width w (mr for A,
// nr for B); micro-panel q holds, for p = 0..kb-1, the w elements
// X[q*w .. q*w+w-1, p] contiguously:
//
//	dst[q*kb*w + p*w + r] = X[q*w+r, p]
//
// so that the micro-kernel reads both operands with unit stride. Rows beyond
// cnt are zero-filled, which keeps edge tiles free of stale (possibly NaN or
// subnormal) data.

// packCopy packs the cnt×kb block X[x, p] = src[base + p*ld + x], where the w
// elements needed for one p are contiguous in src (A transposed, B not
// transposed). With useAsm, full panels are copied by copyPack.
func packCopy(dst, src []float32, base, ld, kb, cnt, w int, useAsm bool) {
	for q := 0; q*w < cnt; q++ {
		cw := min(w, cnt-q*w)
		d := dst[q*kb*w : (q+1)*kb*w]
		s := base + q*w
		switch {
		case useAsm && cw == w && (w == 32 || w == 16 || w == 12 || w == 6):
			_ = src[s+(kb-1)*ld+w-1] // the whole panel lies within src
			copyPack(&d[0], &src[s], ld, w, kb)
		case cw == 4 && w == 4: // the generic kernel
			for p := 0; p < kb; p++ {
				*(*[4]float32)(d[p*4:]) = *(*[4]float32)(src[s+p*ld:])
			}
		default:
			for p := 0; p < kb; p++ {
				dp := d[p*w : p*w+w]
				copy(dp, src[s+p*ld:s+p*ld+cw])
				clear(dp[cw:])
			}
		}
	}
}

// packTrans packs the cnt×kb block X[x, p] = src[base + x*ld + p], where each
// X row is contiguous in src and the packed layout transposes it (A not
// transposed, B transposed). With useAsm, full groups of 8 and 4 rows are
// transposed 8 columns at a time in AVX registers (pack_amd64.s).
func packTrans(dst, src []float32, base, ld, kb, cnt, w int, useAsm bool) {
	for q := 0; q*w < cnt; q++ {
		cw := min(w, cnt-q*w)
		d := dst[q*kb*w : (q+1)*kb*w]
		x0 := base + q*w*ld
		_ = src[x0+(cw-1)*ld+kb-1] // the whole panel lies within src
		r := 0
		if kb8 := kb &^ 7; useAsm && kb8 > 0 {
			for ; r+8 <= cw; r += 8 {
				transPack8(&d[r], &src[x0+r*ld], ld, w, kb8/8)
			}
			for ; r+4 <= cw; r += 4 {
				transPack4(&d[r], &src[x0+r*ld], ld, w, kb8/8)
			}
			// Columns kb8..kb-1 of the rows done above.
			for rr := 0; rr < r; rr++ {
				o := x0 + rr*ld
				for p := kb8; p < kb; p++ {
					d[p*w+rr] = src[o+p]
				}
			}
		}
		for ; r+4 <= cw; r += 4 {
			o := x0 + r*ld
			s0 := src[o : o+kb]
			s1 := src[o+ld : o+ld+kb]
			s2 := src[o+2*ld : o+2*ld+kb]
			s3 := src[o+3*ld : o+3*ld+kb]
			s1 = s1[:len(s0)]
			s2 = s2[:len(s0)]
			s3 = s3[:len(s0)]
			for p := range s0 {
				dd := (*[4]float32)(d[p*w+r:])
				dd[0] = s0[p]
				dd[1] = s1[p]
				dd[2] = s2[p]
				dd[3] = s3[p]
			}
		}
		for ; r < cw; r++ {
			o := x0 + r*ld
			for p, v := range src[o : o+kb] {
				d[p*w+r] = v
			}
		}
		if cw < w {
			for p := 0; p < kb; p++ {
				clear(d[p*w+cw : p*w+w])
			}
		}
	}
}
