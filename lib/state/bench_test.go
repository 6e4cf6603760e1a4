package state

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkProcesses: operations per second of each backend with 1, 8
// and 32 processes adding to four shared counters, as stages counting
// one busy sender do. Each process does a fixed 2,000 adds; b.N only
// repeats the measurement. Reported: ops/s, and the ratio to the
// directory backend with one process, measured in the same run.
func BenchmarkProcesses(b *testing.B) {
	const each = 2000
	var base float64
	for _, bk := range backends(b) {
		for _, procs := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/procs=%d", bk.name, procs), func(b *testing.B) {
				var total time.Duration
				for b.Loop() {
					t0 := time.Now()
					var cmds []*exec.Cmd
					for range procs {
						cmds = append(cmds, spawnB(b, bk, "add", each))
					}
					for _, c := range cmds {
						if err := c.Wait(); err != nil {
							b.Fatal(err)
						}
					}
					total += time.Since(t0)
				}
				ops := float64(procs*each*b.N) / total.Seconds()
				if bk.name == "dir" && procs == 1 {
					base = ops
				}
				b.ReportMetric(ops, "ops/s")
				b.ReportMetric(ops/base, "x-dir-1proc")
			})
		}
	}
}

func spawnB(b *testing.B, bk backend, job string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STATE_TEST_JOB="+job, "STATE_TEST_SPEC="+bk.spec, "STATE_TEST_DIR="+bk.dir, fmt.Sprintf("STATE_TEST_N=%d", n))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd
}

// BenchmarkMillionExpired writes 10^6 distinct keys with a one-second
// expiry on a clock that moves a millisecond per key (so about a thousand
// are live at a time, as with quota counters), then expires the rest and
// reports the directory's size and file count before and after, and the
// ratio of the final size to the peak.
func BenchmarkMillionExpired(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		st, _ := OpenDir(dir, 10*time.Second)
		s := st.(*dirStore)
		clock := time.Now()
		s.now = func() time.Time { return clock }
		ctx := context.Background()
		var peak int64
		for i := range 1_000_000 {
			if err := s.Set(ctx, fmt.Sprintf("q:rule sender%d@example.org 60 %d", i, i/1000), []byte("1"), time.Second); err != nil {
				b.Fatal(err)
			}
			clock = clock.Add(time.Millisecond)
			if i%100_000 == 0 {
				_, size := dirSize(b, dir)
				peak = max(peak, size)
			}
		}
		_, before := dirSize(b, dir)
		peak = max(peak, before)
		clock = clock.Add(2 * time.Second)
		if _, err := s.Expire(ctx); err != nil {
			b.Fatal(err)
		}
		files, after := dirSize(b, dir)
		b.ReportMetric(float64(peak), "bytes-peak")
		b.ReportMetric(float64(after), "bytes-after")
		b.ReportMetric(float64(files), "files-after")
		b.ReportMetric(float64(after)/float64(peak), "x-peak")
	}
}

// BenchmarkAddMillionLive: adds (2,000 a round), from one process, in a directory
// holding 10^6 live keys (written straight into the shards, as
// compaction would), beside the same add in an empty directory. Reported:
// ns per add in each and the ratio.
func BenchmarkAddMillionLive(b *testing.B) {
	full := b.TempDir()
	shards := make([]map[string]rec, Shards)
	for i := range shards {
		shards[i] = map[string]rec{}
	}
	exp := time.Now().Add(time.Hour).UnixMilli()
	for i := range 1_000_000 {
		k := fmt.Sprintf("q:per-sender sender%d@example.org 60 29000000", i)
		shards[shardOf(k)][k] = rec{[]byte("3"), exp}
	}
	fs := &dirStore{dir: full, timeout: 10 * time.Second, now: time.Now}
	for i, m := range shards {
		if err := os.MkdirAll(full, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := fs.compact(i, m); err != nil {
			b.Fatal(err)
		}
	}
	es, _ := OpenDir(b.TempDir(), 10*time.Second)
	ctx := context.Background()
	const each = 2000     // adds per round, so that one round is a measurement
	for i := range 1000 { // creates the lock files, which is not what is measured
		k := fmt.Sprintf("q:per-sender sender%d@example.org 60 29000000", i)
		fs.Add(ctx, k, 1, time.Hour)
		es.Add(ctx, k, 1, time.Hour)
	}
	var tFull, tEmpty time.Duration
	for b.Loop() {
		for i := range each {
			k := fmt.Sprintf("q:per-sender sender%d@example.org 60 29000000", i%1000)
			t0 := time.Now()
			if _, err := fs.Add(ctx, k, 1, time.Hour); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := es.Add(ctx, k, 1, time.Hour); err != nil {
				b.Fatal(err)
			}
			tFull += t1.Sub(t0)
			tEmpty += time.Since(t1)
		}
	}
	b.ReportMetric(float64(tFull.Nanoseconds())/float64(b.N*each), "ns/add-1e6-live")
	b.ReportMetric(float64(tEmpty.Nanoseconds())/float64(b.N*each), "ns/add-empty")
	b.ReportMetric(float64(tFull)/float64(tEmpty), "x-empty")
}
