// Package progress reports the progress of long tasks (training epochs,
// evaluation, downloads). On a terminal it draws a live bar; anywhere else
// (log files, CI, pipes) it prints a plain line at most every few seconds, so
// logs stay readable instead of filling with carriage returns.
package progress
