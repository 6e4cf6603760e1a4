package bridge

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mf/internal/baseline"
	"mf/lib/chain"
	"mf/lib/logger"
)

// BenchmarkMessage pushes a 50 KB message through a session (header
// fields, body chunks, a one-stage chain that copies the stream, the
// comparison that finds no change) beside the baseline of starting the
// same program on the same bytes from a file. The ratio is what the
// bridge adds to the stage it runs.
func BenchmarkMessage(b *testing.B) {
	body := strings.Repeat("All work and no play makes Jack a dull boy.\r\n", 50<<10/45)
	dir := b.TempDir()
	msgFile := filepath.Join(dir, "msg")
	os.WriteFile(msgFile, []byte("Subject: bench\nFrom: a@example.org\n\n"+strings.ReplaceAll(body, "\r\n", "\n")), 0o644)
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skip("no cat")
	}

	bare := func() time.Duration { return baseline.Exec(b, cat, msgFile, dir) }
	st, _ := chain.Parse("copy data -- " + cat)
	cfg := &Config{SpoolDir: dir, Log: logger.New("mf-bridge", io.Discard),
		Chain: &chain.Chain{Stages: []*chain.Stage{st}, Runner: &chain.Runner{TempDir: dir}}}
	ctx := context.Background()
	session := func() time.Duration {
		t0 := time.Now()
		s := NewSession(cfg)
		s.Connect(ctx, "unknown", "192.0.2.1", nil)
		s.Helo(ctx, "h.example", nil)
		s.Mail(ctx, "a@example.org", nil)
		s.Rcpt(ctx, "b@example.com", nil)
		s.Header("Subject", "bench")
		s.Header("From", "a@example.org")
		s.EOH()
		for i := 0; i < len(body); i += 65535 {
			s.Body([]byte(body[i:min(i+65535, len(body))]))
		}
		r, err := s.EOM(ctx, nil)
		if err != nil || len(r.Edits) != 0 || r.Body != nil || r.Results[0].Err != nil {
			b.Fatalf("err %v, edits %v, results %v", err, r.Edits, r.Results[0].Err)
		}
		r.Close()
		s.Close()
		return time.Since(t0)
	}
	baseline.Turns(b, "ms/exec-cat", bare, "ms/session-cat", session, "x-baseline")
}
