//go:build race

package spool

// The race detector makes a sync.Pool drop what it is given at random.
const raceDetector = true
