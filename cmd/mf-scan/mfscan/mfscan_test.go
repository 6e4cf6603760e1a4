package mfscan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mf/lib/cli"
)

func runScan(t *testing.T, conf, stdin string, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "mf.conf")
	if err := os.WriteFile(cf, []byte(strings.ReplaceAll(conf, "DIR", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.rules"), []byte("reject filename *.exe name=exe\ntag body /hello/ header=\"X-Hello: yes\" subject=\"[HI] \"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "MF_STATE_DIR" {
			return dir, true
		}
		return "", false
	}
	code := Run(context.Background(), strings.NewReader(stdin), &out, &errb, append([]string{"-c", cf, "check"}, args...), env)
	return code, out.String(), errb.String()
}

const exe = "Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"SETUP.EXE\"\n\nMZ\n--b--\n"

func TestRules(t *testing.T) {
	conf := "scan.rules DIR/r.rules\n"
	code, out, errs := runScan(t, conf, exe, "--output", "stream")
	if code != 100 || !strings.Contains(out, "Mf-Verdict: reject 550 5.7.1 Message content rejected\n") || !strings.Contains(errs, "rule exe") {
		t.Errorf("exe: %d %q %q", code, out, errs)
	}
	code, out, _ = runScan(t, conf, "Subject: greeting\n\nhello there\n", "--output", "message")
	if code != 0 || !strings.HasPrefix(out, "X-Hello: yes\nX-Mf-Scan: tag by rule:") || !strings.Contains(out, "\nSubject: [HI] greeting\n\nhello there\n") {
		t.Errorf("tag: %d %q", code, out)
	}
	code, out, _ = runScan(t, conf, exe, "--dry-run", "--output", "stream")
	if code != 0 || !strings.Contains(out, "Mf-Trace: mf-scan would-reject by=rule:exe") {
		t.Errorf("dry-run: %d %q", code, out)
	}
}

func TestRefused(t *testing.T) {
	for conf, want := range map[string]string{
		"scan.engine av clamd\n":                        "mf.conf:1: scan.engine: engine av: no addr=",
		"\nscan.rules DIR/none.rules\n":                 "mf.conf:2: scan.rules: open ",
		"scan.max-parts 0\n":                            "max-parts",
		"scan.engine av clamd addr=unix:/x cache=maybe": "mf.conf:1: scan.engine: engine av: cache: want yes or no",
		"scan.colour blue\n":                            `unknown key "scan.colour"`,
	} {
		code, out, errs := runScan(t, conf, "Subject: x\n\nbody\n")
		if code != 75 || out != "" || !strings.Contains(errs, want) {
			t.Errorf("%q: %d %q %q, want %q", conf, code, out, errs, want)
		}
	}
}

func TestEngineDown(t *testing.T) {
	code, out, errs := runScan(t, "scan.engine av clamd addr=tcp:127.0.0.1:1 connect-timeout=1s\n", "Subject: x\n\nbody\n")
	if code != 75 || out != "" || !strings.Contains(errs, "engine av: clamd unavailable") {
		t.Errorf("%d %q %q", code, out, errs)
	}
}

func TestEverySubCommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without Run: %v", m)
	}
}

// A program engine gets the command's environment as Run was given it,
// never the process's: inside mf-bridge the process is the bridge.
func TestProgramEnvironment(t *testing.T) {
	t.Setenv("MF_BRIDGE_SECRET", "the bridge's own")
	dir := t.TempDir()
	cf := filepath.Join(dir, "mf.conf")
	os.WriteFile(cf, []byte(`scan.engine p program -- /bin/sh -c "cat >/dev/null; echo X-Secret: ${MF_BRIDGE_SECRET:-none}; echo X-Lang: $LANG; echo X-Sender: $SENDER"`+"\n"), 0o644)
	env := func(k string) (string, bool) {
		switch k {
		case "MF_STATE_DIR":
			return dir, true
		case "PATH":
			return "/usr/bin:/bin", true
		case "LANG":
			return "C.UTF-8", true
		}
		return "", false
	}
	var out, errb bytes.Buffer
	code := Run(context.Background(), strings.NewReader("Subject: x\n\nhi\n"), &out, &errb, []string{"-c", cf, "check", "--output", "message", "--from", "a@example.org"}, env)
	for _, want := range []string{"X-Secret: none\n", "X-Lang: C.UTF-8\n", "X-Sender: a@example.org\n"} {
		if code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("exit %d, no %q in %q (%s)", code, want, out.String(), errb.String())
		}
	}
}
