package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"

	"mf/lib/qmail"
)

// qq is a stand-in for the real qmail-queue: it keeps fd 0 and fd 1 in
// dir and exits with the code in dir/exit (0 without it).
func qq(t *testing.T) (dir, prog string) {
	dir = t.TempDir()
	prog = filepath.Join(dir, "qmail-queue")
	script := "#!/bin/sh\ncat >" + dir + "/msg\ncat <&1 >" + dir + "/env\nexit $(cat " + dir + "/exit 2>/dev/null || echo 0)\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, prog
}

func init() { ownProcess = false }

type qqRun struct {
	code   int
	stderr string
	custom string // what was written on the custom error descriptor
}

// useEnvelope makes env what the shim reads on its envelope descriptor,
// each time afresh, until tb ends.
func useEnvelope(tb testing.TB, env string) {
	saved := envelopeFile
	tb.Cleanup(func() { envelopeFile = saved })
	envelopeFile = func() io.Reader { return strings.NewReader(env) }
}

// runQQ runs "mf-bridge qmail-queue" with msg on fd 0 and env on the
// envelope descriptor, as qmail-smtpd would, with the environment vars.
func runQQ(t *testing.T, conf, msg, env string, vars map[string]string) qqRun {
	t.Helper()
	useEnvelope(t, env)
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer er.Close()
	lookup := func(k string) (string, bool) {
		if k == "MF_CONFIG" {
			return conf, true
		}
		v, ok := vars[k]
		return v, ok
	}
	var stderr bytes.Buffer
	code := run(context.Background(), strings.NewReader(msg), io.Discard, &stderr,
		[]string{"qmail-queue", "--error-fd", strconv.Itoa(int(ew.Fd()))}, lookup)
	ew.Close()
	custom, _ := io.ReadAll(er)
	return qqRun{code: code, stderr: stderr.String(), custom: string(custom)}
}

func writeConf(t testing.TB, lines ...string) string {
	p := filepath.Join(t.TempDir(), "mf.conf")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const qqMsg = "Received: from unknown (HELO client.example.test) (192.0.2.1)\n  by mx.example.test with SMTP; 1 Dec 2026 22:00:00 -0000\nSubject: hello\n\nbody\n"
const qqEnv = "Fa@example.org\x00Tb@example.test\x00Tc@example.test\x00\x00"

var tcpEnv = map[string]string{"PROTO": "TCP", "TCPREMOTEIP": "192.0.2.1", "PATH": os.Getenv("PATH")}

func TestQmailQueuePassesThrough(t *testing.T) {
	dir, prog := qq(t)
	conf := writeConf(t, "bridge.qmail-queue "+prog)
	r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	msg, _ := os.ReadFile(dir + "/msg")
	env, _ := os.ReadFile(dir + "/env")
	if string(msg) != qqMsg || string(env) != qqEnv {
		t.Fatalf("handed on %q / %q", msg, env)
	}
}

func TestQmailQueueStatusPassedOn(t *testing.T) {
	dir, prog := qq(t)
	os.WriteFile(dir+"/exit", []byte("53\n"), 0o644)
	conf := writeConf(t, "bridge.qmail-queue "+prog)
	if r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv); r.code != 53 {
		t.Fatalf("exit %d, want qmail-queue's 53", r.code)
	}
}

func TestQmailQueueBadEnvelope(t *testing.T) {
	_, prog := qq(t)
	conf := writeConf(t, "bridge.qmail-queue "+prog)
	for env, want := range map[string]int{"Xa\x00\x00": 91, "Fa\x00Tb\x00": 91, "": 91} {
		if r := runQQ(t, conf, qqMsg, env, tcpEnv); r.code != want {
			t.Errorf("envelope %q: exit %d, want %d", env, r.code, want)
		}
	}
}

func TestQmailQueueRefusals(t *testing.T) {
	dir, prog := qq(t)
	conf := writeConf(t,
		"bridge.qmail-queue "+prog,
		`bridge.stage helo helo output=exit 0=reject 1=continue reply="550 5.7.1 Bad HELO" -- sh -c 'cat >/dev/null; [ "$HELO" = client.example.test ] && [ "$TCPREMOTEIP" = 192.0.2.1 ]'`,
	)
	r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv)
	if r.code != qmail.ExitCustom || r.custom != "D5.7.1 Bad HELO" {
		t.Fatalf("helo from the Received line: exit %d custom %q (%s)", r.code, r.custom, r.stderr)
	}
	if _, err := os.Stat(dir + "/msg"); err == nil {
		t.Fatal("a refused message was handed on")
	}
	// The same line from qmail-inject, with no TCPREMOTEIP, names no one.
	noTCP := map[string]string{"PATH": os.Getenv("PATH")}
	if r := runQQ(t, conf, qqMsg, qqEnv, noTCP); r.code != 0 {
		t.Fatalf("no TCPREMOTEIP: the Received line was believed: exit %d", r.code)
	}
}

func TestQmailQueueRecipients(t *testing.T) {
	dir, prog := qq(t)
	conf := writeConf(t,
		"bridge.qmail-queue "+prog,
		`bridge.stage r rcpt output=exit 0=reject 1=continue -- sh -c 'cat >/dev/null; [ "$RECIPIENT" = c@example.test ]'`,
		`bridge.stage t rcpt output=exit 0=tempfail 1=continue -- sh -c 'cat >/dev/null; [ "$RECIPIENT" = later@example.test ]'`,
	)
	if r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	env, _ := os.ReadFile(dir + "/env")
	if string(env) != "Fa@example.org\x00Tb@example.test\x00\x00" {
		t.Fatalf("refused recipient not left out: %q", env)
	}
	// Every recipient refused: the message is.
	r := runQQ(t, conf, qqMsg, "Fa@example.org\x00Tc@example.test\x00\x00", tcpEnv)
	if r.code != qmail.ExitCustom || !strings.HasPrefix(r.custom, "D5.7.1") {
		t.Fatalf("all refused: exit %d custom %q", r.code, r.custom)
	}
	// One recipient tempfailed: the whole message waits, nothing is lost.
	r = runQQ(t, conf, qqMsg, "Fa@example.org\x00Tb@example.test\x00Tlater@example.test\x00\x00", tcpEnv)
	if r.code != qmail.ExitCustom || !strings.HasPrefix(r.custom, "Z4.7.1") {
		t.Fatalf("one tempfailed: exit %d custom %q", r.code, r.custom)
	}
}

func TestQmailQueueEdits(t *testing.T) {
	dir, prog := qq(t)
	conf := writeConf(t,
		"bridge.qmail-queue "+prog,
		`bridge.stage tag data input=message output=headers -- sh -c 'cat >/dev/null; echo "X-Tag: yes"'`,
		`bridge.stage env data -- sed "1,/^\$/ s/^Mf-Rcpt-To: <c@example.test>\$/Mf-Rcpt-To: <d@example.test>/"`,
	)
	if r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	msg, _ := os.ReadFile(dir + "/msg")
	env, _ := os.ReadFile(dir + "/env")
	want := strings.Replace(qqMsg, "Subject: hello\n", "Subject: hello\nX-Tag: yes\n", 1)
	if string(msg) != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
	if string(env) != "Fa@example.org\x00Tb@example.test\x00Td@example.test\x00\x00" {
		t.Fatalf("envelope %q", env)
	}
}

func TestQmailQueueDiscardQuarantine(t *testing.T) {
	dir, prog := qq(t)
	qdir := filepath.Join(t.TempDir(), "quar")
	conf := writeConf(t,
		"bridge.qmail-queue "+prog,
		"bridge.quarantine-dir "+qdir,
		`bridge.stage drop data input=message output=exit 0=discard 1=continue -- grep -q "^Subject: drop"`,
		`bridge.stage hold data input=message output=exit 0=quarantine 1=continue -- grep -q "^Subject: hold"`,
	)
	if r := runQQ(t, conf, strings.Replace(qqMsg, "hello", "drop", 1), qqEnv, tcpEnv); r.code != 0 {
		t.Fatalf("discard: exit %d", r.code)
	}
	if _, err := os.Stat(dir + "/msg"); err == nil {
		t.Fatal("a discarded message was handed on")
	}
	if r := runQQ(t, conf, strings.Replace(qqMsg, "hello", "hold", 1), qqEnv, tcpEnv); r.code != 0 {
		t.Fatalf("quarantine: exit %d %s", r.code, r.stderr)
	}
	held, err := qmail.Quarantine{Dir: qdir}.List()
	if err != nil || len(held) != 1 || held[0].Env.ClientAddr != "192.0.2.1" || held[0].Env.Helo != "client.example.test" || len(held[0].Env.Rcpts) != 2 {
		t.Fatalf("held: %v %+v", err, held)
	}
	// Released: handed to qmail-queue as it came, and gone from the quarantine.
	var out bytes.Buffer
	code := run(context.Background(), nil, &out, io.Discard, []string{"--config", conf, "quarantine", "release", held[0].ID}, func(string) (string, bool) { return "", false })
	if code != 0 {
		t.Fatalf("release: exit %d", code)
	}
	msg, _ := os.ReadFile(dir + "/msg")
	if string(msg) != strings.Replace(qqMsg, "hello", "hold", 1) {
		t.Fatalf("released %q", msg)
	}
	if held, _ := (qmail.Quarantine{Dir: qdir}).List(); len(held) != 0 {
		t.Fatal("still held after release")
	}
}

func TestQmailQueueFailingStageIsTemporary(t *testing.T) {
	_, prog := qq(t)
	conf := writeConf(t, "bridge.qmail-queue "+prog, `bridge.stage broken data -- sh -c 'exit 3'`)
	r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv)
	if r.code != qmail.ExitCustom || !strings.HasPrefix(r.custom, "Z") {
		t.Fatalf("exit %d custom %q", r.code, r.custom)
	}
}

func TestDotQmail(t *testing.T) {
	conf := writeConf(t)
	for _, tc := range []struct {
		stage string
		code  int
		out   string
	}{
		{"exit 0", 0, ""},
		{"exit 99", 0, ""}, // accept: the next line delivers
		{"exit 100", 100, "Message rejected (#5.7.1)\n"},
		{"exit 111", 111, "Try again later (#4.7.1)\n"},
		{"exit 3", 111, "Try again later (#4.7.1)\n"},
		{"echo /etc/mf/lists/10-x.list:3 >&2; exit 100", 100, "Message rejected (#5.7.1)\n"},
	} {
		var out bytes.Buffer
		env := map[string]string{"MF_CONFIG": conf, "SENDER": "a@example.org", "RECIPIENT": "b@example.test", "PATH": os.Getenv("PATH")}
		code := run(context.Background(), strings.NewReader("Subject: x\n\nbody\n"), &out, &out,
			[]string{"dot-qmail", "output=exit", "--", "sh", "-c", "cat >/dev/null; " + tc.stage},
			func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if code != tc.code || out.String() != tc.out {
			t.Errorf("%s: exit %d %q, want %d %q", tc.stage, code, out.String(), tc.code, tc.out)
		}
	}
}

func TestQmailQueueReadError(t *testing.T) {
	_, prog := qq(t)
	conf := writeConf(t, "bridge.qmail-queue "+prog)
	useEnvelope(t, qqEnv)
	lookup := func(k string) (string, bool) {
		if k == "MF_CONFIG" {
			return conf, true
		}
		return "", false
	}
	code := run(context.Background(), iotest.ErrReader(errors.New("connection reset")), io.Discard, io.Discard, []string{"qmail-queue"}, lookup)
	if code != qmail.ExitRead {
		t.Fatalf("exit %d, want 54", code)
	}
}

func TestQmailQueueMacros(t *testing.T) {
	_, prog := qq(t)
	conf := writeConf(t,
		"bridge.qmail-queue "+prog,
		`bridge.stage relay mail output=exit 0=accept 1=reject -- grep -q "^Mf-Macro: RELAYCLIENT"`,
	)
	env := map[string]string{"TCPREMOTEIP": "192.0.2.1", "RELAYCLIENT": "", "PATH": os.Getenv("PATH")}
	if r := runQQ(t, conf, qqMsg, qqEnv, env); r.code != 0 {
		t.Fatalf("RELAYCLIENT set: exit %d %q", r.code, r.custom)
	}
	if r := runQQ(t, conf, qqMsg, qqEnv, tcpEnv); r.code != qmail.ExitCustom {
		t.Fatalf("RELAYCLIENT unset: exit %d", r.code)
	}
}

// TestEnvelopeFileKeepsFd1 checks that reading the envelope leaves fd 1
// open once the reader is dropped and collected: by then fd 1 may be the
// envelope handed on to the real qmail-queue, which read nothing from it
// when a finalizer closed it.
func TestEnvelopeFileKeepsFd1(t *testing.T) {
	saved, err := syscall.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Dup2(saved, 1)
		syscall.Close(saved)
	}()
	func() { _ = envelopeFile() }()
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := unix.FcntlInt(1, unix.F_GETFD, 0); err != nil {
		t.Fatalf("fd 1 after the envelope reader was collected: %v", err)
	}
}
