// Command experiments runs the project's reproducible comparisons and writes
// their results beside the exact command that produced them:
//
//	go run ./experiments -list
//	go run ./experiments -run NAME [-quick] [-out DIR] [-data DIR] [-seed N]
//
// Each experiment is a definition in its own file, registered in init. A run
// writes DIR/README.md (a Markdown table, the command, git revision, dataset
// and split, machine and wall time) and its PNG figures. Without -out, full
// runs write to experiments/results/NAME (committed) and -quick runs to a
// fresh temporary directory: quick sizes prove the code works, their
// numbers mean nothing.
//
// Each file defines one experiment; its doc comment states what it measures,
// the formulas and papers it follows, and the sizes of its full and quick runs.
package main
