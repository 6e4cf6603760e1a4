package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mf/lib/chain"
	"mf/lib/resident"
	"mf/lib/stream"
)

// BenchmarkListsStage is one mf-lists check at rcpt with the example
// lists, run by the chain's runner in-process, beside the same stage as
// a process (exec=yes, the binary built here): what in-process saves.
func BenchmarkListsStage(b *testing.B) {
	if os.Geteuid() == 0 {
		b.Skip("in-process stages never run as root: make bench runs this as nobody")
	}
	dir := b.TempDir()
	// make bench runs this as an unprivileged user (in-process stages
	// never run as root), with the binaries make all built.
	bin, _ := filepath.Abs("../../bin/mf-lists")
	if _, err := os.Stat(bin); err != nil {
		bin = filepath.Join(dir, "mf-lists")
		if out, err := exec.Command("go", "build", "-o", bin, "../mf-lists").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	conf := filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte("state-dir "+dir+"/state\nlists.dir ../../etc/lists\n"), 0o644)
	// Until then each run parses the file just written again (resident.Settle).
	time.Sleep(resident.Settle)
	env := []string{"PATH=/usr/bin:/bin", "MF_CONFIG=" + conf}
	e := stream.Envelope{Phase: stream.Rcpt, ClientAddr: "203.0.113.9", ClientName: "unknown", Helo: "h.example",
		MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
	var base float64
	for _, way := range []string{"exec", "in-process"} {
		b.Run(way, func(b *testing.B) {
			line := "lists rcpt " + bin + " check"
			if way == "exec" {
				line = "lists rcpt exec=yes " + bin + " check"
			}
			st, err := chain.Parse(line)
			if err != nil {
				b.Fatal(err)
			}
			r := &chain.Runner{Env: env, TempDir: dir, Commands: commands, Resident: resident.New()}
			defer r.Resident.Close()
			if r.InProcess(st) != (way == "in-process") {
				b.Fatalf("in-process %v", r.InProcess(st))
			}
			for b.Loop() {
				ee := e
				res := r.Run(context.Background(), st, &ee, nil)
				if res.Err != nil || res.Exit != 0 {
					b.Fatalf("exit %d: %v: %s", res.Exit, res.Err, res.Stderr)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/1e6, "ms/stage")
			if way == "exec" {
				base = ns
			} else if base > 0 {
				b.ReportMetric(ns/base, "x-exec")
			}
		})
	}
}
