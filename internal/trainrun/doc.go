// Package trainrun runs one training job end to end for cmd/train: it finds
// the data, splits off a validation set, builds or resumes the model, trains
// it, and keeps the run directory up to date after every epoch:
//
//	model.safetensors   latest weights and training state (resumable)
//	best.safetensors    weights with the best validation ELBO so far
//	metrics.jsonl       one JSON object per finished epoch
//	samples-eNNN.png    64 images from the prior (the same z every epoch)
//	recon-eNNN.png      test images (odd rows) above their reconstructions
//
// Order of writes after an epoch: metrics, pictures, best, latest. A crash in
// between leaves a checkpoint older than the last metrics line; on resume the
// metrics lines beyond the checkpoint's epoch are dropped, so the file never
// holds an epoch twice.
//
// Evaluation sets use a fixed binarization (seed [EvalBinarizeSeed]) that does
// not depend on the run's seed, so ELBOs of different runs are comparable.
package trainrun
