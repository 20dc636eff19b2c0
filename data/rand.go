package data

import "math/bits"

// The package's randomness is counter-based: every draw is a pure function
// of (seed, purpose, epoch, example, position), computed with SplitMix64
// (Steele, Lea & Flood 2014). Nothing depends on call order or hidden
// state, so a run resumed mid-epoch sees exactly the pixels and the order it
// would have seen, and the streams are fixed by this file rather than by the
// standard library's unspecified Rand methods.

// golden is SplitMix64's increment, 2^64 divided by the golden ratio.
const golden = 0x9e3779b97f4a7c15

// Domain tags keep the streams for different purposes independent under one
// user seed (ASCII "shuffle ", "valsplit", "staticbn", "dynamicb").
const (
	tagShuffle uint64 = 0x73687566666c6520
	tagSplit   uint64 = 0x76616c73706c6974
	tagStatic  uint64 = 0x737461746963626e
	tagDynamic uint64 = 0x64796e616d696362
)

// mix64 is SplitMix64's output function (Stafford's variant 13), a
// bijection on uint64 with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// streamKey derives the key of the stream for (seed, tag, epoch).
func streamKey(seed, tag, epoch uint64) uint64 {
	return mix64(mix64(seed^tag) + golden*epoch)
}

// splitMix is the SplitMix64 generator: state advances by golden, output is
// mix64(state).
type splitMix struct{ s uint64 }

func (r *splitMix) next() uint64 {
	r.s += golden
	return mix64(r.s)
}

// below returns a uniform integer in [0, n), n > 0, by Lemire's
// multiply-and-reject method (no modulo bias).
func (r *splitMix) below(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}

// permute fills p with a uniformly random permutation of 0..len(p)-1 drawn
// from the stream key (Fisher-Yates, starting from the identity, so the result
// does not depend on p's previous contents).
func permute(p []int, key uint64) {
	for i := range p {
		p[i] = i
	}
	r := splitMix{key}
	for i := len(p) - 1; i > 0; i-- {
		j := int(r.below(uint64(i + 1)))
		p[i], p[j] = p[j], p[i]
	}
}

// bernoulliThreshold[v] = round(65536 v / 255): a pixel of value v becomes 1
// when a uniform 16-bit u is below it, i.e. with probability v/255 to within
// 2^-17, exactly 0 for v = 0 and exactly 1 for v = 255.
var bernoulliThreshold = func() (t [256]uint32) {
	for v := range t {
		t[v] = uint32((v*65536 + 127) / 255)
	}
	return t
}()

// drawBinary writes one Bernoulli draw of pix (probabilities pix/255) to dst
// as 0 or 1. The uniforms come from the SplitMix64 stream of example i under
// key, 16 bits per pixel, four pixels per 64-bit word.
func drawBinary(dst []float32, pix []uint8, key uint64, i int) {
	r := splitMix{mix64(key + golden*(uint64(i)+1))}
	for j := 0; j < len(pix); j += 4 {
		w := r.next()
		for k, v := range pix[j:min(j+4, len(pix))] {
			dst[j+k] = float32(b2u(uint32(w>>(16*k))&0xffff < bernoulliThreshold[v]))
		}
	}
}

// drawBits is drawBinary packed into bits (bit j of the row is pixel j), for
// the static draw that is kept for the life of a Loader.
func drawBits(dst []uint64, pix []uint8, key uint64, i int) {
	clear(dst)
	r := splitMix{mix64(key + golden*(uint64(i)+1))}
	for j := 0; j < len(pix); j += 4 {
		w := r.next()
		for k, v := range pix[j:min(j+4, len(pix))] {
			if uint32(w>>(16*k))&0xffff < bernoulliThreshold[v] {
				dst[(j+k)/64] |= 1 << ((j + k) % 64)
			}
		}
	}
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
