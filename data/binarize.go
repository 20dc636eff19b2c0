package data

import (
	"fmt"
	"strings"
)

// Binarization says how grayscale pixels become inputs for a model.
type Binarization uint8

const (
	// BinarizeNone keeps intensities: x = pixel/255.
	BinarizeNone Binarization = iota
	// BinarizeStatic draws x ~ Bernoulli(pixel/255) once from the seed and
	// keeps that draw for every epoch.
	BinarizeStatic
	// BinarizeDynamic draws x ~ Bernoulli(pixel/255) afresh for every epoch,
	// as a pure function of (seed, epoch, example).
	BinarizeDynamic
)

var binarizationNames = [...]string{
	BinarizeNone:    "none",
	BinarizeStatic:  "static",
	BinarizeDynamic: "dynamic",
}

func (b Binarization) String() string {
	if int(b) < len(binarizationNames) {
		return binarizationNames[b]
	}
	return fmt.Sprintf("Binarization(%d)", uint8(b))
}

// ParseBinarization parses "none", "static" or "dynamic" (any case).
func ParseBinarization(s string) (Binarization, error) {
	for b, name := range binarizationNames {
		if strings.EqualFold(s, name) {
			return Binarization(b), nil
		}
	}
	return 0, fmt.Errorf("data: unknown binarization %q (want none, static or dynamic)", s)
}

// MarshalText makes a Binarization readable in JSON and flag.TextVar.
func (b Binarization) MarshalText() ([]byte, error) {
	if !b.valid() {
		return nil, fmt.Errorf("data: invalid binarization %d", uint8(b))
	}
	return []byte(b.String()), nil
}

// UnmarshalText is ParseBinarization for encoding and flag packages.
func (b *Binarization) UnmarshalText(text []byte) error {
	v, err := ParseBinarization(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b Binarization) valid() bool { return int(b) < len(binarizationNames) }

// staticKey is the key of the static draw for seed; dynamicKey that of the
// draw for one epoch. Example i's pixels then come from the stream
// mix64(key + golden*(i+1)) (see drawBinary), i being its index in Images.
func staticKey(seed uint64) uint64             { return streamKey(seed, tagStatic, 0) }
func dynamicKey(seed uint64, epoch int) uint64 { return streamKey(seed, tagDynamic, uint64(epoch)) }

// Binarize returns the static Bernoulli draw of m for seed as an image set
// with pixels 0 or 255 (so Float32 gives 0 and 1 and it can be written as
// IDX). It is the same draw a Loader with BinarizeStatic and this seed
// feeds, which makes a fixed binarized test set easy to save and share.
func (m *Images) Binarize(seed uint64) *Images {
	d := m.Dim()
	out := &Images{N: m.N, Channels: m.Channels, Rows: m.Rows, Cols: m.Cols, Pix: make([]uint8, len(m.Pix))}
	row := make([]float32, d)
	key := staticKey(seed)
	for i := range m.N {
		drawBinary(row, m.Image(i), key, i)
		for j, x := range row {
			out.Pix[i*d+j] = uint8(x * 255)
		}
	}
	return out
}
