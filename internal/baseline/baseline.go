// Package baseline is what mf's benchmarks measure against: the same
// work done without mf, timed in the same process.
package baseline

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// Exec starts the program at path with the file msg on its standard
// input and a new file in dir as its standard output, as a bare fork and
// exec would, and returns how long that took.
func Exec(tb testing.TB, path, msg, dir string) time.Duration {
	t0 := time.Now()
	in, err := os.Open(msg)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "out")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(path)
	cmd.Stdin, cmd.Stdout = in, out
	if err := cmd.Run(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0)
}

// Turns times base and run in turns, once each per iteration of the
// benchmark's loop, so that a machine whose load drifts weighs on both
// alike. It reports each one's milliseconds per iteration under its unit,
// and run's time over base's under ratio.
func Turns(b *testing.B, baseUnit string, base func() time.Duration, runUnit string, run func() time.Duration, ratio string) {
	var tBase, tRun time.Duration
	for b.Loop() {
		tBase += base()
		tRun += run()
	}
	n := float64(b.N)
	b.ReportMetric(float64(tBase.Microseconds())/1000/n, baseUnit)
	b.ReportMetric(float64(tRun.Microseconds())/1000/n, runUnit)
	b.ReportMetric(float64(tRun)/float64(tBase), ratio)
}
