// Package runinfo is what the trainer, the evaluator and the picture tools
// share about a run, so that the read-only tools do not import the trainer:
// where a checkpoint's data came from (the file's own data description, or
// for version-1 files the run description in a training state), how
// evaluation binarizes (a static draw with EvalBinarizeSeed, or grey
// levels), and how a run's prior and KL weighting are named in logs and
// reports.
package runinfo
