// Package readme holds the test that keeps README.md's Go code true: every
// ```go block is extracted and compiled against this module.
//
// A block that starts with "package main" is built as is, as main.go of a
// new module that requires github.com/govae/govae with a replace directive
// to this repository (what a user pasting it into their own module gets).
// A block preceded by the comment
//
//	<!-- fragment -->
//	<!-- fragment: var x [][]float32; var rng *rand.Rand -->
//
// is a fragment: its import declaration is kept, the declarations after
// "fragment:" (Go statements) and then its other lines become the body of
// func main, and results it never uses are allowed (the test adds "_ = v"
// for each variable the compiler names as unused). Any other Go block is an
// error, so that no example in README escapes the check.
package readme
