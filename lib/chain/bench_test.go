package chain

import (
	"context"
	"mf/lib/spool"
	"mf/lib/supervise"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkRun runs a 50 KB message through cat as a stage (supervisor,
// envelope, output spooled and read back) beside the baseline of
// starting cat on the same bytes from a file. The ratio is what running
// it as a stage costs, the supervisor that ends all it starts included.
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	text := "Subject: bench\n\n" + strings.Repeat("All work and no play makes Jack a dull boy.\n", 50<<10/44)
	msgFile := filepath.Join(dir, "msg")
	os.WriteFile(msgFile, []byte(text), 0o644)
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Fatal("no cat")
	}
	var base float64
	b.Run("baseline-exec-cat", func(b *testing.B) {
		for b.Loop() {
			in, _ := os.Open(msgFile)
			out, _ := os.CreateTemp(dir, "out")
			cmd := exec.Command(cat)
			cmd.Stdin, cmd.Stdout = in, out
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			in.Close()
			out.Close()
			os.Remove(out.Name())
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	runner := func(b *testing.B) {
		st, _ := Parse("copy data input=message output=message -- " + cat)
		f, _ := os.Open(msgFile)
		defer f.Close()
		msg := &spool.Message{File: f}
		r := &Runner{TempDir: dir}
		for b.Loop() {
			e := env
			res := r.Run(context.Background(), st, &e, msg)
			if res.Err != nil {
				b.Fatal(res.Err)
			}
			res.Message.File.Close()
		}
		if base > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
		}
	}
	// As installed: mf-stage-supervisor starts the stage.
	sv := filepath.Join(dir, supervise.Name)
	if out, err := exec.Command("go", "build", "-o", sv, "../../cmd/mf-stage-supervisor").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	supervisorPath()
	self := supervisor.path
	supervisor.path = sv
	b.Run("runner-cat", runner)
	// Without it: this binary (the test's, like mf-bridge a large one)
	// is its own supervisor.
	supervisor.path = self
	b.Run("runner-cat-self-supervised", runner)
}
