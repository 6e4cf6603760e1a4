package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchLines is the size of the generated log: the Postfix dump repeated
// with its queue ids made new in each copy, so messages do not merge.
const benchLines = 500_000

func genLog(b *testing.B) (string, int) {
	f, err := os.Open("testdata/postfix-maillog.gz")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	src, err := io.ReadAll(z)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "maillog")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(out)
	n := 0
	for round := 0; n < benchLines; round++ {
		for _, line := range bytes.Split(bytes.TrimSuffix(src, []byte("\n")), []byte("\n")) {
			w.Write(newQID(line, round))
			w.WriteByte('\n')
			n++
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	out.Close()
	return path, n
}

// newQID appends the round to a queue id after "prog[pid]: ".
func newQID(line []byte, round int) []byte {
	i := bytes.Index(line, []byte("]: "))
	if i < 0 {
		return line
	}
	rest := line[i+3:]
	j := bytes.Index(rest, []byte(": "))
	if j < 8 || j > 20 || bytes.ContainsAny(rest[:j], " =<[") || string(rest[:j]) == "NOQUEUE" {
		return line
	}
	k := i + 3 + j
	return append(append(append([]byte{}, line[:k]...), fmt.Sprintf("Z%d", round)...), line[k:]...)
}

// measure runs a command over the log, returning its time and peak RSS.
// The RSS wait4 reports for a child of this process includes this
// process's own (Go starts children with vfork), so it is taken from GNU
// time, a fork away, where there is one.
func measure(b *testing.B, name string, args ...string) (time.Duration, int64) {
	gnuTime := false
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		args = append([]string{"-f", "%M", name}, args...)
		name, gnuTime = "/usr/bin/time", true
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", name, err, stderr.Bytes())
	}
	d := time.Since(start)
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	if gnuTime {
		f := bytes.Fields(stderr.Bytes())
		if len(f) > 0 {
			if kb, err := strconv.ParseInt(string(f[len(f)-1]), 10, 64); err == nil {
				rss = kb * 1024
			}
		}
	}
	return d, rss
}

// BenchmarkStat puts mf-stat (the built binary, bin/mf-stat) beside
// pflogsumm and wc -l on the same 500,000-line Postfix log: lines per
// second, peak RSS, and the ratio to pflogsumm.
func BenchmarkStat(b *testing.B) {
	if os.Getenv("MF_STAT_BENCH") == "" {
		b.Skip("set MF_STAT_BENCH=1 (make bench does): it builds a 500,000-line log")
	}
	bin, _ := filepath.Abs("../../bin/mf-stat")
	if _, err := os.Stat(bin); err != nil {
		b.Skip("bin/mf-stat missing: make all")
	}
	log, lines := genLog(b)
	run := func(b *testing.B, name string, args ...string) (float64, int64) {
		var total time.Duration
		var rss int64
		for b.Loop() {
			d, r := measure(b, name, args...)
			total += d
			rss = max(rss, r)
		}
		rate := float64(lines) * float64(b.N) / total.Seconds()
		b.ReportMetric(rate, "lines/s")
		b.ReportMetric(float64(rss)/(1<<20), "MB-peak-RSS")
		b.ReportMetric(0, "ns/op")
		return rate, rss
	}
	b.Run("wc-l", func(b *testing.B) { run(b, "wc", "-l", log) })
	var pfl float64
	if _, err := exec.LookPath("pflogsumm"); err == nil {
		b.Run("pflogsumm", func(b *testing.B) { pfl, _ = run(b, "pflogsumm", log) })
	} else {
		b.Log("pflogsumm not installed: no ratio")
	}
	b.Run("mf-stat", func(b *testing.B) {
		rate, _ := run(b, bin, "--config", "/dev/null", "--mta", "postfix", log)
		if pfl > 0 {
			b.ReportMetric(rate/pfl, "x-pflogsumm")
		}
	})
}
