// Package memstat reads this process's resident memory from /proc/self
// (Linux), for tests and benchmarks that check training does not grow
// without bound. The Go runtime's own statistics miss memory held outside
// the Go heap and memory the heap has not yet returned to the system;
// resident memory is what the user sees in top. SetGCExcluding keeps a
// loaded dataset out of the garbage collector's headroom.
package memstat
