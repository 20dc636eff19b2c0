package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/nets"
)

// ArchConvPeer is -arch convpeer: the PyTorch peer's conv VAE
// (../shared/bench/peer_convvae_torch.py), z = 32, Bernoulli.
const ArchConvPeer = "convpeer"

// convFlags sets the model's trunk from -arch, -encoder and -decoder, and
// refuses the MLP's flags with a convolutional trunk (they would be ignored).
func convFlags(cfg *trainrun.Config, arch, encoder, decoder string) error {
	switch arch {
	case "":
	case ArchConvPeer:
		if cfg.Explicit["encoder"] || cfg.Explicit["decoder"] {
			return errors.New("-arch convpeer sets -encoder and -decoder; give either the preset or the specs")
		}
		encoder, decoder = nets.ConvPeerEncoder, nets.ConvPeerDecoder
		if !cfg.Explicit["latent"] {
			cfg.Model.Latent = 32
		}
	default:
		return fmt.Errorf("-arch %q: want convpeer (or no -arch)", arch)
	}
	if encoder == "" {
		if decoder != "" {
			return errors.New("-decoder needs -encoder (the MLP trunk takes -hidden and -decoder-hidden)")
		}
		return nil
	}
	for _, f := range []string{"hidden", "decoder-hidden", "activation"} {
		if cfg.Explicit[f] {
			return fmt.Errorf("-%s applies to the MLP trunk; a convolutional trunk takes its widths and activation in -encoder and -decoder (e.g. conv:32,64/elu/dense:256)", f)
		}
	}
	trunk, err := amortized.ConvTrunkString(encoder, decoder)
	if err != nil {
		return fmt.Errorf("-encoder %s -decoder %s: %w", encoder, decoder, err)
	}
	cfg.Model.Trunk = trunk
	cfg.Model.Hidden, cfg.Model.DecoderHidden = nil, nil
	return nil
}

// imageFlags reads -image-size HxW and -channels.
func imageFlags(size string, channels int) (data.ImageFolderOptions, error) {
	var o data.ImageFolderOptions
	if channels != 0 && channels != 1 && channels != 3 {
		return o, fmt.Errorf("-channels %d: want 1 (grey), 3 (RGB) or 0 (from the files)", channels)
	}
	o.Channels = channels
	if size == "" {
		return o, nil
	}
	hs, ws, ok := strings.Cut(strings.ToLower(size), "x")
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if !ok || err1 != nil || err2 != nil || h < 1 || w < 1 || h > data.MaxImageSide || w > data.MaxImageSide {
		return o, fmt.Errorf("-image-size %q: want HxW (rows x cols), each 1 to %d, e.g. 32x32", size, data.MaxImageSide)
	}
	o.Rows, o.Cols = h, w
	return o, nil
}
