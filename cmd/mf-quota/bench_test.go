package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mf/lib/redistest"
)

// BenchmarkProcess runs the built mf-quota check per message, as an MTA
// runs a stage, with three rules (a sender with two windows, the client,
// the whole server) counting in a state directory, and beside it the
// built mf-lists check with the example lists and an empty dynamic list
// as the baseline; and, when redis-server is installed, mf-quota check
// counting in Redis over a Unix socket. Reported: ns per check of each,
// and the ratios to the lists check.
func BenchmarkProcess(b *testing.B) {
	dir := b.TempDir()
	quota, lists := filepath.Join(dir, "mf-quota"), filepath.Join(dir, "mf-lists")
	for bin, pkg := range map[string]string{quota: ".", lists: "../mf-lists"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	conf := filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte(`quota.rule per-sender key=sender limit=1000000/1m,100000000/1d
quota.rule per-client key=client limit=1000000/1h count=recipients
quota.rule server key=any limit=100000000/1m reserve=1000
`), 0o644)
	msg, err := os.ReadFile("../../t/msg/nonspam.eml")
	if err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	env := []string{"--from", "a@example.org", "--rcpt", "b@example.com", "--client", "203.0.113.9"}
	runOnce := func(bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(msg)
		var out bytes.Buffer
		cmd.Stdout = &out
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", bin, err)
		}
		d := time.Since(t0)
		if out.Len() < len(msg) {
			b.Fatalf("%s wrote %d bytes, less than the message", bin, out.Len())
		}
		return d
	}
	largs := append([]string{"--config", "/dev/null", "--dir", "../../etc/lists", "--state-dir", state, "check"}, env...)
	runOnce(lists, largs...) // compiles the lists into the cache
	url := redistest.Start(b)
	var q, l, r time.Duration
	for i := 0; b.Loop(); i++ {
		q += runOnce(quota, append([]string{"--config", conf, "--state-dir", state, "check", "--queue-id", fmt.Sprint("Q", i)}, env...)...)
		l += runOnce(lists, largs...)
		if url != "" {
			r += runOnce(quota, append([]string{"--config", conf, "--state", url, "check", "--queue-id", fmt.Sprint("Q", i)}, env...)...)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(q.Nanoseconds())/n, "ns/quota")
	b.ReportMetric(float64(l.Nanoseconds())/n, "ns/lists")
	b.ReportMetric(float64(q)/float64(l), "x-lists")
	if url != "" {
		b.ReportMetric(float64(r.Nanoseconds())/n, "ns/quota-redis")
		b.ReportMetric(float64(r)/float64(l), "x-lists-redis")
	}
}
