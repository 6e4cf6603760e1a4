package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mf/cmd/mf-lists/mflists"
	"mf/lib/lists"
	"mf/lib/redistest"
	"mf/lib/resident"
	"mf/lib/state"
)

// BenchmarkProcess runs the built mf-lists check, as an MTA would run a
// stage, on a 50 KB message with the example lists plus a list of 10^6
// client addresses (compiled once, then cached), and beside it cat(1) on
// the same input as the floor of any process in a pipeline. Reported:
// ns per check, ns per cat, and the ratio.
func BenchmarkProcess(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "mf-lists")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skip("no cat(1) for the baseline")
	}
	lists := filepath.Join(dir, "lists")
	if err := os.CopyFS(lists, os.DirFS("../../etc/lists")); err != nil {
		b.Fatal(err)
	}
	var big bytes.Buffer
	big.WriteString("match: client-addr\naction: block\n")
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1_000_000; i++ {
		fmt.Fprintf(&big, "%d.%d.%d.%d\n", 11+r.IntN(100), r.IntN(256), r.IntN(256), r.IntN(256))
	}
	if err := os.WriteFile(filepath.Join(lists, "60-million.list"), big.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	// An image compiled from a list written this recently is compiled
	// again at the next run (lists.Open).
	time.Sleep(resident.Settle)
	msg, err := os.ReadFile("../../t/msg/nonspam.eml")
	if err != nil {
		b.Fatal(err)
	}
	for len(msg) < 50_000 {
		msg = append(msg, "All work and no play makes Jack a dull boy, says the body of this message.\n"...)
	}
	input := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(input, msg, 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"--config", "/dev/null", "--dir", lists, "--state-dir", filepath.Join(dir, "state"),
		"check", "--client", "203.0.113.9", "--from", "a@example.org", "--rcpt", "b@example.com"}
	runOnce := func(name string, args ...string) time.Duration {
		f, err := os.Open(input)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(name, args...)
		cmd.Stdin = f
		var out bytes.Buffer
		cmd.Stdout = &out
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		d := time.Since(t0)
		if out.Len() < len(msg) {
			b.Fatalf("%s wrote %d bytes, less than the message", name, out.Len())
		}
		return d
	}
	first := runOnce(bin, args...) // compiles the lists into the cache
	b.ResetTimer()
	var check, base time.Duration
	for i := 0; i < b.N; i++ {
		check += runOnce(bin, args...)
		base += runOnce(cat)
	}
	n := float64(b.N)
	b.ReportMetric(float64(check.Nanoseconds())/n, "ns/check")
	b.ReportMetric(float64(base.Nanoseconds())/n, "ns/cat")
	b.ReportMetric(float64(check)/float64(base), "x-cat")
	b.ReportMetric(float64(first.Milliseconds()), "ms/first-run")
}

// BenchmarkStart is mf-lists check started as its own process (a shell
// pipeline, a .qmail line) on a small message with the example mf.conf
// and lists, beside a trivial Go program that copies stdin to stdout,
// built by the same toolchain: what mf-lists costs to start beyond any Go
// program. Goal: at most 1.5 times the trivial one (x-trivial). Beside
// them, what part of that is the binary and what part kong: the same
// program linked whole but only copying stdin (testdata/floor, x-floor),
// and mf-lists --version, which builds kong's model of the command and
// exits (x-version).
func BenchmarkStart(b *testing.B) {
	dir := b.TempDir()
	build := func(out string, src ...string) string {
		b.Helper()
		path := filepath.Join(dir, out)
		cmd := exec.Command("go", append([]string{"build", "-o", path}, src...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make builds them
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		return path
	}
	bin := build("mf-lists", ".")
	floor := build("floor", "./testdata/floor")
	src := filepath.Join(dir, "trivial.go")
	os.WriteFile(src, []byte("package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() { io.Copy(os.Stdout, os.Stdin) }\n"), 0o644)
	trivial := build("trivial", src)
	input := "../../t/msg/nonspam.eml"
	msg, err := os.ReadFile(input)
	if err != nil {
		b.Fatal(err)
	}
	// runOnce runs a program on the message, and checks it wrote no less than
	// "least" bytes.
	runOnce := func(least int, name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Stdin = bytes.NewReader(msg)
		var out bytes.Buffer
		cmd.Stdout = &out
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		d := time.Since(t0)
		if out.Len() < least {
			b.Fatalf("%s %q wrote %d bytes, less than %d", name, args, out.Len(), least)
		}
		return d
	}
	args := []string{"--config", "../../etc/mf.conf", "--dir", "../../etc/lists", "--state-dir", filepath.Join(dir, "state"),
		"check", "--client", "203.0.113.9", "--from", "a@example.org", "--rcpt", "b@example.com"}
	all := func() (check, base, fl, version time.Duration) {
		return runOnce(len(msg), bin, args...), runOnce(len(msg), trivial), runOnce(len(msg), floor),
			runOnce(len("mf-lists"), bin, "--version")
	}
	all()
	b.ResetTimer()
	var check, base, fl, version time.Duration
	for i := 0; i < b.N; i++ {
		c, t, f, v := all()
		check, base, fl, version = check+c, base+t, fl+f, version+v
	}
	n := float64(b.N)
	b.ReportMetric(float64(check.Microseconds())/1000/n, "ms/check")
	b.ReportMetric(float64(base.Microseconds())/1000/n, "ms/trivial")
	b.ReportMetric(float64(check)/float64(base), "x-trivial")
	b.ReportMetric(float64(fl)/float64(base), "x-floor")
	b.ReportMetric(float64(version)/float64(base), "x-version")
}

// BenchmarkDynamic is mf-lists check run in-process, as mf-bridge runs
// it, with 5000 entries in the dynamic lists of the state directory (dir)
// and, when redis-server is installed, of Redis (redis): with the dynamic
// lists kept between runs while the store's version of them is unchanged
// (ms/kept), and read and compiled again at each run, as without a
// resident set (ms/read, the baseline). x-read is the first over the
// second.
func BenchmarkDynamic(b *testing.B) {
	b.Run("dir", func(b *testing.B) { benchDynamic(b, "") })
	if url := redistest.Start(b); url != "" {
		b.Run("redis", func(b *testing.B) { benchDynamic(b, url) })
	}
}

func benchDynamic(b *testing.B, url string) {
	dir := b.TempDir()
	st, err := state.Open(url, dir, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := 0; i < 5000; i++ {
		if _, err := lists.AddDynamic(ctx, st, "block", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), time.Hour, "bench", "me"); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(resident.Settle) // until then the file is read at each run
	msg, err := os.ReadFile("../../t/msg/nonspam.eml")
	if err != nil {
		b.Fatal(err)
	}
	set := resident.New()
	defer set.Close()
	kept := resident.With(ctx, set)
	args := []string{"--config", "/dev/null", "--dir", "../../etc/lists", "--state", url, "--state-dir", dir,
		"check", "--client", "10.0.19.135", "--from", "a@example.org", "--rcpt", "b@example.com"}
	run := func(ctx context.Context) time.Duration {
		var out, errOut bytes.Buffer
		t0 := time.Now()
		code := mflists.Run(ctx, bytes.NewReader(msg), &out, &errOut, args, func(string) (string, bool) { return "", false })
		d := time.Since(t0)
		if code != 100 {
			b.Fatalf("exit %d, not 100 (a dynamic entry's reject): %s", code, errOut.String())
		}
		return d
	}
	run(kept)
	b.ResetTimer()
	var k, r time.Duration
	for i := 0; i < b.N; i++ {
		k += run(kept)
		r += run(ctx)
	}
	n := float64(b.N)
	b.ReportMetric(float64(k.Microseconds())/1000/n, "ms/kept")
	b.ReportMetric(float64(r.Microseconds())/1000/n, "ms/read")
	b.ReportMetric(float64(k)/float64(r), "x-read")
}
