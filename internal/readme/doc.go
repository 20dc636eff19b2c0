// Package readme holds the test that keeps README.md's Go code true: every
// ```go block is extracted and compiled against this module.
//
// A block that starts with "package main" is built as is, as a main package
// of this module under testdata/ (with this repository's go.mod and go.sum,
// offline): the same public API a user's module gets. A separate module
// with a replace directive would be closer to a user's, but it needs go.mod
// files of old dependencies that a module cache filled by building this
// repository need not hold, so it failed offline on a fresh machine.
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
