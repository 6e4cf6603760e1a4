package chain

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

func TestParse(t *testing.T) {
	s, err := Parse(`spam data timeout=30s on-error=accept input=message output=headers 1=reject 2=error reply="550 5.7.1 Spam, sorry" -- spamc -c --headers`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "spam" || !s.At("data") || s.At("rcpt") || s.Timeout != 30*time.Second || s.OnError != verdict.Accept ||
		s.Input != MessageInput || s.Output != HeaderOutput || s.Exits[1] != verdict.Reject || s.Exits[2] != Error ||
		s.Reply.String() != "550 5.7.1 Spam, sorry" || strings.Join(s.Argv, "|") != "spamc|-c|--headers" {
		t.Errorf("parsed %+v", s)
	}
	s, err = Parse("lists connect,rcpt mf-lists check")
	if err != nil || fmt.Sprint(s.Phases) != "[connect rcpt]" || s.OnError != verdict.Tempfail || s.TimeoutAt("rcpt") != EnvelopeTimeout {
		t.Errorf("defaults: %+v %v", s, err)
	}
	bad := map[string]string{
		"x data":                                  "want NAME PHASE",
		"x bogus prog":                            `unknown phase "bogus"`,
		"x data,data prog":                        "phase data given twice",
		"x data timeout=soon prog":                "positive duration",
		"x data on-error=continue prog":           "want tempfail, accept or reject",
		"x data input=file prog":                  "want stream or message",
		"x data colour=red prog":                  `unknown option "colour"`,
		"x data 300=reject prog":                  "0 to 255",
		"x data 1=reject 1=accept prog":           "given twice",
		"x data 1=maybe prog":                     `unknown action "maybe"`,
		"x data reply=250 prog":                   "4xx or 5xx",
		"x data timeout=1s":                       "no program",
		"x data mf-lists check | grep x":          "without a shell",
		"x rcpt output=message prog":              "data phase alone",
		"x data input=message output=stream prog": "needs input=stream",
		"x/y data prog":                           "stage name \"x/y\"",
		`x data "unclosed`:                        "invalid",
	}
	for line, want := range bad {
		if _, err := Parse(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", line, err, want)
		}
	}
}

// script writes an executable shell script and returns a stage line
// that runs it.
func script(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "stage")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func spooled(t *testing.T, msg string) *spool.Message {
	f, err := os.CreateTemp(t.TempDir(), "msg")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(msg)
	t.Cleanup(func() { f.Close() })
	return &spool.Message{File: f}
}

func read(t *testing.T, m *spool.Message) string {
	r, err := m.Reader()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

var env = stream.Envelope{Phase: "data", ClientAddr: "192.0.2.7", ClientName: "unknown", Helo: "h.example",
	MailFrom: "a@example.org", Rcpts: []string{"b@example.com", "c@example.com"}, QueueID: "4Bx"}

func runStage(t *testing.T, opts, body string, msg *spool.Message) *Result {
	t.Helper()
	st, err := Parse("t data " + opts + " " + script(t, body))
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Env: []string{"PATH=/usr/bin:/bin"}}
	e := env
	return r.Run(context.Background(), st, &e, msg)
}

func TestRunExitCodes(t *testing.T) {
	msg := spooled(t, "Subject: x\n\nbody\n")
	for _, c := range []struct {
		opts, body string
		want       verdict.Action
		failed     bool
	}{
		{"output=exit", "exit 0", verdict.Continue, false},
		{"output=exit", "exit 99", verdict.Accept, false},
		{"output=exit", "exit 100", verdict.Reject, false},
		{"output=exit", "exit 111", verdict.Tempfail, false},
		{"output=exit", "exit 75", verdict.Tempfail, true},
		{"output=exit", "exit 3", verdict.Tempfail, true},
		{"output=exit on-error=reject", "exit 3", verdict.Reject, true},
		{"output=exit on-error=accept", "exit 3", verdict.Continue, true},
		{"output=exit 3=discard", "exit 3", verdict.Discard, false},
		{"output=exit 0=error", "exit 0", verdict.Tempfail, true},
		{"output=exit", "kill -9 $$", verdict.Tempfail, true},
	} {
		r := runStage(t, c.opts, c.body, msg)
		if r.Verdict.Action != c.want || (r.Err != nil) != c.failed {
			t.Errorf("%s / %s: %s, err %v", c.opts, c.body, r.Verdict, r.Err)
		}
	}
	r := runStage(t, `output=exit 1=reject reply="554 5.7.0 Virus found"`, "exit 1", msg)
	if r.Verdict.String() != "reject 554 5.7.0 Virus found" {
		t.Errorf("override reply: %s", r.Verdict)
	}
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	r := runStage(t, "output=exit timeout=300ms", "sleep 30 & echo $! >"+dir+"/pid; wait", spooled(t, "S: x\n\n"))
	if r.Err == nil || !strings.Contains(r.Err.Error(), "timeout after 300ms") {
		t.Fatalf("err %v", r.Err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	b, _ := os.ReadFile(dir + "/pid")
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	// Dead, or a zombie waiting for an init that does not reap.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Errorf("the stage's child %d outlived the timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestRunOutputs(t *testing.T) {
	msg := spooled(t, "Subject: x\n\nbody\n")
	// A stream stage sees the envelope and may change it and the message.
	r := runStage(t, "", `sed 's/^Mf-Mail-From: .*/Mf-Mail-From: <new@example.org>/; s/^body$/new body/'`, msg)
	if r.Err != nil || r.Env == nil || r.Env.MailFrom != "new@example.org" || read(t, r.Message) != "Subject: x\n\nnew body\n" {
		t.Fatalf("stream: %v %+v", r.Err, r.Env)
	}
	// Its Mf-Verdict gives the reply and tells discard from accept.
	r = runStage(t, "", `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 554 5.7.1 No thanks\n\n'; exit 100`, msg)
	if r.Verdict.String() != "reject 554 5.7.1 No thanks" {
		t.Errorf("stream verdict: %s %v", r.Verdict, r.Err)
	}
	r = runStage(t, "", `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: discard\n\n'; exit 99`, msg)
	if r.Verdict.Action != verdict.Discard {
		t.Errorf("stream discard: %s %v", r.Verdict, r.Err)
	}
	// A broken stream is a failure, unless the stage refused anyway.
	r = runStage(t, "", "echo garbage", msg)
	if r.Err == nil || r.Verdict.Action != verdict.Tempfail {
		t.Errorf("garbage: %s %v", r.Verdict, r.Err)
	}
	r = runStage(t, "", "echo garbage; exit 100", msg)
	if r.Err != nil || r.Verdict.Action != verdict.Reject {
		t.Errorf("garbage with reject: %s %v", r.Verdict, r.Err)
	}
	// Bare message in, environment for the envelope, headers out.
	r = runStage(t, "input=message output=headers", `read first; echo "X-First: $first"; echo "X-Env: $SENDER $RECIPIENT $TCPREMOTEIP $HELO $QUEUE_ID $SMTP_PHASE"; printf 'X-Folded: a\n\tb\n'`, msg)
	want := []string{"X-First: Subject: x", "X-Env: a@example.org b@example.com 192.0.2.7 h.example 4Bx data", "X-Folded: a\n\tb"}
	if r.Err != nil || strings.Join(r.Headers, "|") != strings.Join(want, "|") {
		t.Errorf("headers: %q %v", r.Headers, r.Err)
	}
	r = runStage(t, "input=message output=headers", `echo "not a header"`, msg)
	if r.Err == nil {
		t.Error("a line that is no header field is taken")
	}
	// output=message: what it prints is the message; nothing is an error.
	r = runStage(t, "input=message output=message", `tr a-z A-Z`, msg)
	if r.Err != nil || read(t, r.Message) != "SUBJECT: X\n\nBODY\n" {
		t.Errorf("message: %v", r.Err)
	}
	r = runStage(t, "input=message output=message", `cat >/dev/null`, msg)
	if r.Err == nil {
		t.Error("an empty message is taken")
	}
	// A stage that does not read its input is fine.
	big := spooled(t, "Subject: x\n\n"+strings.Repeat("x", 1<<20))
	r = runStage(t, "input=message output=exit", "exit 0", big)
	if r.Err != nil {
		t.Errorf("unread stdin: %v", r.Err)
	}
}

func TestChainStopsAtFirstDecision(t *testing.T) {
	dir := t.TempDir()
	line := func(name, body string) *Stage {
		st, err := Parse(name + " data " + script(t, body))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c := &Chain{Runner: &Runner{}, Stages: []*Stage{
		line("one", `sed 's/^body$/one/'`),
		line("two", `cat; touch `+dir+`/two`),
		line("three", `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject\n\n'; exit 100`),
		line("four", `cat; touch `+dir+`/four`),
	}}
	o := c.Run(context.Background(), env, spooled(t, "S: x\n\nbody\n"))
	defer o.Close()
	if o.Verdict.Action != verdict.Reject || len(o.Results) != 3 {
		t.Errorf("verdict %s after %d stages", o.Verdict, len(o.Results))
	}
	if _, err := os.Stat(dir + "/four"); err == nil {
		t.Error("a stage after the decision ran")
	}
	if read(t, o.Message) != "S: x\n\none\n" {
		t.Errorf("message %q", read(t, o.Message))
	}
}

func TestChainAlways(t *testing.T) {
	dir := t.TempDir()
	line := func(l string) *Stage {
		st, err := Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c := &Chain{Runner: &Runner{}, Stages: []*Stage{
		line("no data output=exit -- sh -c 'cat >/dev/null; exit 100'"),
		line("skipped data output=exit -- touch " + dir + "/skipped"),
		line("cleanup data output=exit always=yes -- sh -c 'cat >/dev/null; touch " + dir + "/cleanup; exit 111'"),
	}}
	o := c.Run(context.Background(), env, spooled(t, "S: x\n\nbody\n"))
	defer o.Close()
	if o.Verdict.Action != verdict.Reject || len(o.Results) != 2 || o.Results[1].Verdict.Action != verdict.Tempfail {
		t.Errorf("verdict %s after %d stages", o.Verdict, len(o.Results))
	}
	if _, err := os.Stat(dir + "/skipped"); err == nil {
		t.Error("a stage after the decision ran")
	}
	if _, err := os.Stat(dir + "/cleanup"); err != nil {
		t.Error("an always stage did not run after the decision")
	}
	if _, err := Parse("x data always=maybe prog"); err == nil {
		t.Error("always=maybe is taken")
	}
}

func TestRunOutputLimit(t *testing.T) {
	start := time.Now()
	r := runStage(t, "timeout=60s", "cat >/dev/null; exec yes 'a stage gone wild'", spooled(t, "S: x\n\nbody\n"))
	if r.Err == nil || !strings.Contains(r.Err.Error(), "signal 25") || r.Verdict.Action != verdict.Tempfail {
		t.Errorf("a stage writing without end: %v, %s", r.Err, r.Verdict)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
}

// A data stage whose stream has no message, no sender or no recipient
// has failed: its on-error decides, and the mail is never emptied or
// dropped by what a stage left out.
func TestStreamOutputLeavesNothingOut(t *testing.T) {
	for name, script := range map[string]string{
		"envelope, no message": `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n'`,
		"no sender":            `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Rcpt-To: <b@example.com>\n\nSubject: x\n\nbody\n'`,
		"no recipients":        `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@example.org>\n\nSubject: x\n\nbody\n'`,
		"accept, no message":   `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n'; exit 99`,
	} {
		r := runStage(t, "", script, spooled(t, "Subject: x\n\nbody\n"))
		if r.Err == nil || r.Verdict.Action != verdict.Tempfail {
			t.Errorf("%s: err %v, verdict %s", name, r.Err, r.Verdict)
		}
	}
	// Said outright, a discard with no message is a decision.
	r := runStage(t, "", `cat >/dev/null; printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@example.org>\nMf-Verdict: discard\n\n'; exit 99`, spooled(t, "Subject: x\n\nbody\n"))
	if r.Err != nil || r.Verdict.Action != verdict.Discard {
		t.Errorf("discard: err %v, verdict %s", r.Err, r.Verdict)
	}
}
