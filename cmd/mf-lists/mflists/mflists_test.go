package mflists

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mf/lib/cli"
)

// lists runs mf-lists as its main would, with env as the whole
// environment.
func mfLists(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = Run(context.Background(), strings.NewReader(stdin), &out, &errOut, args, lookup)
	return code, out.String(), errOut.String()
}

func listFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "block.list")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const msg = "From: a@example.org\nSubject: x\n\nbody\n"

func TestEverySubCommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without a Run method: %v", m)
	}
}

func TestCheck(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\nreply: 550 5.7.1 Go away\n192.0.2.0/24\n")
	env := map[string]string{"MF_CONFIG": "/dev/null"}
	for _, c := range []struct {
		client string
		code   int
		out    string
	}{
		{"192.0.2.7", 100, "Mf-Verdict: reject 550 5.7.1 Go away"},
		{"203.0.113.1", 0, "Mf-Trace: mf-lists continue"},
	} {
		code, out, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", block, "check", "--client", c.client)
		if code != c.code || !strings.Contains(out, c.out) || !strings.HasSuffix(out, msg) {
			t.Errorf("client %s: exit %d (want %d), stdout %q, stderr %q", c.client, code, c.code, out, errOut)
		}
	}
	// A missing list is an error, never a verdict.
	if code, _, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", "/nonexistent.list", "check"); code != 75 || errOut == "" {
		t.Errorf("missing list: exit %d, stderr %q", code, errOut)
	}
}

// A decided stream with a pending field, written as a bare message: the
// field goes into the message (no envelope is left to carry it), as
// mf-quota does too.
func TestDecidedStreamMessageMode(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\n192.0.2.0/24\n")
	in := "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 550 5.7.1 No\nMf-Add-Header: X-Earlier: yes\n\n" + msg
	code, out, errOut := mfLists(t, map[string]string{"MF_CONFIG": "/dev/null"}, in, "--state-dir", "", "--list", block, "check", "--input", "stream", "--output", "message")
	if code != 100 || out != "X-Earlier: yes\n"+msg {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// MF_STAGE was a chain line for mf-bridge and an SMTP phase for mf-lists;
// one setting must not break the other. The phase is MF_PHASE now.
func TestMFStageIsNoPhase(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\n192.0.2.0/24\n")
	env := map[string]string{"MF_CONFIG": "/dev/null", "MF_STAGE": "lists data mf-lists check"}
	if code, _, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", block, "check", "--client", "192.0.2.1"); code != 100 {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// --stage stays, hidden, as another name for --phase.
	code, out, _ := mfLists(t, map[string]string{"MF_CONFIG": "/dev/null"}, "", "--state-dir", "", "--list", block, "check", "--stage", "rcpt", "--client", "192.0.2.1", "--rcpt", "x@example.com")
	if code != 100 || !strings.Contains(out, "Mf-Stage: rcpt") {
		t.Errorf("--stage rcpt: exit %d, stdout %q", code, out)
	}
}
