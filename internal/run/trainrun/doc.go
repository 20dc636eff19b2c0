// Package trainrun runs one training job end to end for cmd/train: it finds
// the data, splits off a validation set, builds or resumes the model, trains
// it, and keeps the run directory up to date after every epoch:
//
//	model.safetensors   latest weights and training state (resumable)
//	best.safetensors    weights with the best validation ELBO so far
//	ckpt-stepNNNNNNNNN.safetensors
//	                    with Keep > 0: copies of the Keep most recent saves
//	metrics.jsonl       one JSON object per finished epoch, and with LogEvery
//	                    one per logged step ("kind": "step"; see internal/report)
//	samples-eNNN.png    64 images from the prior (the same z every epoch)
//	recon-eNNN.png      test images above their reconstructions (labelled figures)
//	command.txt         Config.Command: the line that started the run, then
//	                    one per resume
//	index.html          the run's page (internal/report), refreshed after
//	                    each epoch's checkpoint; a failure only warns
//
// # Console
//
// One vocabulary (console.go): the ELBO, recon - KL, and the IWAE bound
// log (1/k) sum_i p(x, z_i)/q(z_i|x), in nats per image, higher is better;
// the units are stated once at the start. The progress bar shows the
// running means over the epoch so far, which at the epoch's end are the
// summary's "train" numbers (the same quantity). LogEvery lines show that
// batch's ELBO and terms and the optimized objective: marked [optimized]
// when it is the ELBO or the IWAE bound, else spelled out (recon - beta KL
// during warm-up, with free bits), with its value -loss. For likelihoods of
// grey levels (Gaussian) a note says that densities can exceed 1, so the
// ELBO can be positive. metrics.jsonl's step lines keep their fields (elbo,
// recon, kl, beta, loss) and add "bound", the objective's estimate.
//
// # Crashes
//
// Every checkpoint is written atomically (temporary file, fsync, rename), so
// a crash at any moment, kill -9 included, leaves the previous file or the
// new one. model.safetensors is saved after each epoch, when training is
// cancelled (Ctrl-C), and with SaveSteps or SaveInterval also mid-epoch;
// the state it holds is exact, so a run resumed from any save ends with the
// same weights as one never stopped. After a crash, at most the steps since
// the last save are lost. Starting again removes the temporary files a
// crash left behind.
//
// Order of writes after an epoch: metrics, pictures, best, latest, its kept
// copy. A crash in between leaves a checkpoint older than the last metrics
// line; on resume the metrics lines beyond the checkpoint's epoch are
// dropped, so the file never holds an epoch twice. Kept copies newer than
// the checkpoint resumed from are deleted too: they belong to a run that is
// not going on, and would otherwise count as the most recent.
//
// # Divergence
//
// A NaN or infinity in the loss or a gradient (found by the trainer), in
// the weights about to be saved, or in a validation or test ELBO stops
// training with a *amortized.NonFiniteError naming the epoch and step, and
// nothing of that state is written: model.safetensors stays the last good
// checkpoint. With OnNonFinite "rollback" training instead reloads it (or
// restarts from the initial weights if nothing was saved yet), halves the
// learning rate and goes on, logging each rollback, at most MaxRollbacks
// times per call. A checkpoint saved just before the divergence may already
// hold the step that caused it; with Keep, older copies remain to go back
// to by hand.
//
// # The run directory
//
// A trainer holds an exclusive flock(2) on the directory itself while it
// trains or resumes there; a second trainer on the same directory fails at
// once (ErrLocked). The kernel drops the lock when the process ends, by
// kill -9 too, so no stale lock is ever left, and no lock file.
//
// Any file a run writes (model, best, kept copies, metrics.jsonl, the
// per-epoch pictures) marks the directory as a run, which a new run refuses
// without Force. Force deletes nothing until every setting and the data
// have been checked and the model built: then the previous run's files move
// into .replaced-by-force/, and are deleted when the new run saves its
// first checkpoint, or moved back (and what the new run wrote removed) if
// it fails before that. A crash in between is finished by the next start
// in that directory, the same way.
//
// On resume, a metrics line that a crash cut short (no end of line) or
// that is not a metrics record is reported and dropped, and the file
// rewritten atomically. The training state's counters are checked against
// the data: its batch size fits the training images, its batch lies within
// an epoch, and its step is epochs x batches per epoch + batch (the loader
// in checkpoints checks the rest: finite weights and moments, Adam second
// moments >= 0, counters within the run). A failed save (a full disk) says
// which checkpoint was kept: writes are atomic, so it is the previous one.
//
// # Sizes
//
// Settings that decide allocations are bounded before anything is
// allocated (CheckSizes, at flag parsing and again with the data's
// dimension): MaxWidth units per hidden layer and latent dimensions,
// MaxBatch images per batch, MaxK samples per image, MaxParams parameters,
// and MaxStepBytes for an estimate of one step's activations and gradients
// (k x batch rows, each the input, every layer's output and their
// gradients). Errors name the flags and the limit.
//
// Evaluation sets use a fixed binarization (seed [runinfo.EvalBinarizeSeed]) that does
// not depend on the run's seed, so ELBOs of different runs are comparable.
package trainrun
