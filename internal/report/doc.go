// Package report reads a training run's metrics.jsonl and writes the run's
// page, index.html: a self-contained HTML file (images inline as data:
// URIs, no script, no network) showing the configuration and data (from
// the checkpoint's metadata), the command that made the run (command.txt,
// written by cmd/train), the training curves with a table of epochs, the
// latest sample and reconstruction grids, and the evaluation in eval.json
// (cmd/eval -json) with its k and error when present. cmd/train refreshes it
// after every epoch; `cmd/sample report -run DIR` writes it on demand.
//
// metrics.jsonl holds one JSON object per line: epoch lines (epoch,
// train_elbo, recon, kl, val_*, test_*, ...) and, with cmd/train -log-every
// N, step lines marked "kind": "step" (step, elbo = recon - kl of one
// minibatch, recon, kl, beta, loss), all in nats per image. Curves draws
// epoch points and step lines as a thin line at fractional epochs
// (epoch-1 + its share of the epoch's steps), and overlays several runs'
// held-out curves with a legend of run names.
//
// Its test opens the page in headless Chromium (skipping, with a message,
// when no chromium binary is found) and checks that every image loads and
// that nothing overflows horizontally at 1280 and 800 pixels.
package report
