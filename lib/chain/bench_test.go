package chain

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mf/internal/baseline"
	"mf/lib/spool"
	"mf/lib/supervise"
)

// BenchmarkRun runs a 50 KB message through cat as a stage (supervisor,
// envelope, output spooled and read back) beside the baseline of
// starting cat on the same bytes from a file, in turns, so that a noisy
// machine weighs on both alike. The ratios are what running it as a
// stage costs, the supervisor that ends all it starts included: x-cat
// through the C mf-stage-supervisor make builds where there is a C
// compiler, x-cat-go through the Go one, x-cat-self through this binary
// (the test's, like mf-bridge a large one) as its own supervisor.
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	text := "Subject: bench\n\n" + strings.Repeat("All work and no play makes Jack a dull boy.\n", 50<<10/44)
	msgFile := filepath.Join(dir, "msg")
	os.WriteFile(msgFile, []byte(text), 0o644)
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Fatal("no cat")
	}
	st, _ := Parse("copy data input=message output=message -- " + cat)
	f, _ := os.Open(msgFile)
	defer f.Close()
	msg := &spool.Message{File: f}
	r := &Runner{TempDir: dir}
	stage := func(sv string) {
		supervisor.path = sv
		e := env
		res := r.Run(context.Background(), st, &e, msg)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		res.Message.Close()
	}

	supervisorPath()
	self := supervisor.path
	defer func() { supervisor.path = self }()
	KeepSupervisor() // as a server does
	defer EndSupervisor()
	sv := filepath.Join(dir, supervise.Name)
	if out, err := exec.Command("go", "build", "-o", sv+"-go", "../../cmd/mf-stage-supervisor").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	ways := []struct{ name, path string }{{"x-cat-go", sv + "-go"}, {"x-cat-self", self}}
	if c, err := cSupervisor(); err == nil {
		ways = append([]struct{ name, path string }{{"x-cat", c}}, ways...)
	} else {
		b.Log("the C mf-stage-supervisor is not measured: ", err)
	}
	took := make([]time.Duration, len(ways))
	var base time.Duration
	for b.Loop() {
		base += baseline.Exec(b, cat, msgFile, dir)
		for i, w := range ways {
			t0 := time.Now()
			stage(w.path)
			took[i] += time.Since(t0)
		}
	}
	b.ReportMetric(float64(base.Microseconds())/1000/float64(b.N), "ms/exec-cat")
	for i, w := range ways {
		b.ReportMetric(float64(took[i])/float64(base), w.name)
	}
}
