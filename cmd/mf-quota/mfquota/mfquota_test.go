package mfquota

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mf/lib/cli"
)

func mfQuota(t *testing.T, conf, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "mf.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MF_CONFIG": p, "MF_STATE_DIR": filepath.Join(dir, "state")}
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = Run(context.Background(), strings.NewReader(stdin), &out, &errOut, args, lookup)
	return code, out.String(), errOut.String()
}

const msg = "From: a@example.org\nSubject: x\n\nbody\n"

func TestEverySubCommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without a Run method: %v", m)
	}
}

func TestCheckCounts(t *testing.T) {
	dir := t.TempDir()
	conf := "quota.rule per-sender key=sender limit=2/1h\n"
	for i, want := range []int{0, 0, 111} {
		env := map[string]string{"MF_CONFIG": filepath.Join(dir, "mf.conf"), "MF_STATE_DIR": filepath.Join(dir, "state")}
		os.WriteFile(env["MF_CONFIG"], []byte(conf), 0o644)
		var out, errOut bytes.Buffer
		code := Run(context.Background(), strings.NewReader(msg), &out, &errOut,
			[]string{"check", "--from", "a@example.org", "--rcpt", "b@example.com", "--queue-id", string(rune('A' + i))},
			func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if code != want {
			t.Errorf("message %d: exit %d, want %d; %s", i+1, code, want, errOut.String())
		}
	}
}

func TestBadRuleNamesLine(t *testing.T) {
	code, _, errOut := mfQuota(t, "# rules\nquota.rule x key=nonsense limit=1/1h\n", msg, "check")
	if code != 75 || !strings.Contains(errOut, "mf.conf:2:") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// A decided stream is passed on; in message mode its pending field goes
// into the message, as mf-lists does.
func TestDecidedStreamMessageMode(t *testing.T) {
	in := "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 550 5.7.1 No\nMf-Add-Header: X-Earlier: yes\n\n" + msg
	code, out, errOut := mfQuota(t, "", in, "check", "--input", "stream", "--output", "message")
	if code != 100 || out != "X-Earlier: yes\n"+msg {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
