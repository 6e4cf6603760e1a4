package chain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mf/lib/resident"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// testStage does what its arguments say, in order: copy (the stream or
// message on), verdict=ACTION (copy the stream with that verdict),
// rcpt=ADDR (copy the stream with one more recipient), header=NAME:VALUE
// (print a header field), env=NAME (print NAME=value on stderr),
// say=TEXT (on stderr), sleep=DURATION (or until the context ends),
// hang=DURATION (ignoring the context), flood=BYTES, panic, exit=N,
// lie=ADDR (copy the stream, handing back as parsed one with ADDR as
// another recipient: stream.Taker), same=TEXT (write the envelope block,
// hand it back with the message unchanged, then write TEXT:
// stream.MessageTaker).
func testStage(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	in := stream.MessageInput
	if v, _ := lookupEnv("MF_INPUT"); v == "stream" {
		in = stream.StreamInput
	}
	pass := func(edit func(*stream.Envelope)) int {
		s, err := stream.Read(stdin, in, stream.Envelope{})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 75
		}
		if in == stream.StreamInput {
			edit(&s.Env)
			if err := stream.Write(stdout, &s.Env); err != nil {
				return 75
			}
		}
		if s.Message != nil {
			io.Copy(stdout, s.Message)
		}
		return 0
	}
	code := 0
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "copy":
			code = pass(func(*stream.Envelope) {})
		case "verdict":
			act, _ := verdict.ParseAction(v)
			vd := verdict.New(act, verdict.Reply{Code: 550, Status: "5.7.1", Text: "test says " + v})
			code = pass(func(e *stream.Envelope) { e.Verdict = &vd })
		case "rcpt":
			code = pass(func(e *stream.Envelope) { e.Rcpts = append(e.Rcpts, v) })
		case "lie":
			code = pass(func(e *stream.Envelope) {
				if t, ok := stdout.(stream.Taker); ok {
					l := *e
					l.Rcpts = append(append([]string(nil), e.Rcpts...), v)
					var b bytes.Buffer
					stream.Write(&b, &l)
					t.TakeEnvelope(l, b.Bytes())
				}
			})
		case "same":
			s, err := stream.Read(stdin, stream.StreamInput, stream.Envelope{})
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 75
			}
			var b bytes.Buffer
			stream.Write(&b, &s.Env)
			if t, ok := stdout.(stream.MessageTaker); ok {
				t.TakeEnvelope(s.Env, b.Bytes())
				stdout.Write(b.Bytes())
				t.TakeMessage()
			} else {
				stdout.Write(b.Bytes())
				io.Copy(stdout, s.Message)
			}
			io.WriteString(stdout, v)
		case "header":
			n, val, _ := strings.Cut(v, ":")
			fmt.Fprintf(stdout, "%s: %s\n", n, val)
		case "env":
			val, ok := lookupEnv(v)
			fmt.Fprintf(stderr, "%s=%q %v\n", v, val, ok)
		case "say":
			fmt.Fprintln(stderr, v)
		case "sleep":
			d, _ := time.ParseDuration(v)
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		case "hang":
			d, _ := time.ParseDuration(v)
			time.Sleep(d)
			fmt.Fprintln(stdout, "too late")
		case "flood":
			n, _ := strconv.Atoi(v)
			buf := bytes.Repeat([]byte("x"), 1<<20)
			for ; n > 0; n -= len(buf) {
				if _, err := stdout.Write(buf[:min(n, len(buf))]); err != nil {
					return 75
				}
			}
		case "panic":
			panic("test stage panics")
		case "exit":
			code, _ = strconv.Atoi(v)
		}
	}
	return code
}

// ways are the two ways a stage of the test binary runs.
func ways(t *testing.T) map[string]*Runner {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(self) != filepath.Base(os.Args[0]) {
		t.Fatalf("test binary %s is not %s", self, os.Args[0])
	}
	env := []string{"PATH=/usr/bin:/bin", "MF_TEST_STAGE=1", "LANG=C"}
	return map[string]*Runner{
		"exec":       {Env: env, TempDir: t.TempDir()},
		"in-process": {Env: env, TempDir: t.TempDir(), Commands: map[string]Command{filepath.Base(self): testStage}, Resident: resident.New()},
	}
}

// stageLine is a stage line running the test binary with args.
func stageLine(t *testing.T, name, phases, opts, args string) *Stage {
	t.Helper()
	self, _ := os.Executable()
	st, err := Parse(name + " " + phases + " " + opts + " -- " + self + " " + args)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// summary is what a user of the chain sees of a result: verdict and
// reply, whether it failed, the envelope, message and fields it wrote.
func summary(t *testing.T, r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict %s", r.Verdict)
	if r.Err != nil {
		b.WriteString(" failed")
	}
	if r.Env != nil {
		fmt.Fprintf(&b, " rcpts %v", r.Env.Rcpts)
	}
	if r.Message != nil {
		fmt.Fprintf(&b, " message %q", read(t, r.Message))
	}
	if len(r.Headers) > 0 {
		fmt.Fprintf(&b, " headers %q", r.Headers)
	}
	return b.String()
}

// TestBothWays: every stage option gives the same verdict, edits and
// failure whether the stage runs as a process or in-process.
func TestBothWays(t *testing.T) {
	os.Setenv("MF_LEAK", "the bridge's own") // never a stage's
	defer os.Unsetenv("MF_LEAK")
	const body = "Subject: x\n\nbody\n"
	for _, c := range []struct {
		opts, args string
		want       string // what summary says, both ways
		stderr     string // a part of stderr, both ways
	}{
		{"", "copy", `verdict continue rcpts [b@example.com c@example.com] message "Subject: x\n\nbody\n"`, ""},
		{"", "rcpt=d@example.com", `verdict continue rcpts [b@example.com c@example.com d@example.com] message "Subject: x\n\nbody\n"`, ""},
		{"", "verdict=discard exit=99", `verdict discard rcpts [b@example.com c@example.com] message "Subject: x\n\nbody\n"`, ""},
		{"", "verdict=reject exit=100", `verdict reject 550 5.7.1 test says reject rcpts [b@example.com c@example.com] message "Subject: x\n\nbody\n"`, ""},
		{`output=exit reply="554 5.7.0 No"`, "exit=100", "verdict reject 554 5.7.0 No", ""},
		{"output=exit", "exit=111", "verdict tempfail 451 4.7.1 Try again later", ""},
		{"output=exit", "exit=3", "verdict tempfail 451 4.7.1 Try again later failed", ""},
		{"output=exit on-error=accept", "exit=75", "verdict continue failed", ""},
		{"output=exit on-error=reject", "exit=75", "verdict reject 550 5.7.1 Message rejected failed", ""},
		{"output=exit 3=discard", "exit=3", "verdict discard", ""},
		{"output=exit 0=error", "exit=0", "verdict tempfail 451 4.7.1 Try again later failed", ""},
		{"output=exit 7=quarantine", "exit=7", "verdict quarantine held by mf stage t", ""},
		{"input=message output=headers", "header=X-Test:yes", `verdict continue headers ["X-Test: yes"]`, ""},
		{"input=message output=message", "copy", `verdict continue message "Subject: x\n\nbody\n"`, ""},
		{"input=message output=message", "exit=0", "verdict tempfail 451 4.7.1 Try again later failed", ""},
		{"output=exit", "env=SENDER env=MF_INPUT env=MF_LEAK env=LANG say=done", "verdict continue",
			"SENDER=\"a@example.org\" true\nMF_INPUT=\"stream\" true\nMF_LEAK=\"\" false\nLANG=\"C\" true\ndone"},
		{"output=exit timeout=300ms", "sleep=20s", "verdict tempfail 451 4.7.1 Try again later failed", ""},
		{"output=exit timeout=300ms on-error=accept", "sleep=20s", "verdict continue failed", ""},
		{"output=exit", "say=oops panic", "verdict tempfail 451 4.7.1 Try again later failed", "oops"},
		{"output=exit on-error=reject", "panic", "verdict reject 550 5.7.1 Message rejected failed", ""},
		{"input=message output=message", "flood=" + strconv.Itoa(65<<20), "verdict tempfail 451 4.7.1 Try again later failed", ""},
	} {
		got := map[string]string{}
		for way, r := range ways(t) {
			st := stageLine(t, "t", "data", c.opts, c.args)
			e := env
			res := r.Run(context.Background(), st, &e, spooled(t, body))
			if res.InProc != (way == "in-process") {
				t.Errorf("%s %s: ran in-process %v", c.opts, c.args, res.InProc)
			}
			got[way] = summary(t, res)
			if !strings.Contains(res.Stderr, c.stderr) {
				t.Errorf("%s: %s %s: stderr %q, want %q in it", way, c.opts, c.args, res.Stderr, c.stderr)
			}
			if strings.Contains(c.opts, "timeout=") && (res.Duration > 5*time.Second || !strings.Contains(fmt.Sprint(res.Err), "timeout")) {
				t.Errorf("%s: %s %s: took %s, error %v", way, c.opts, c.args, res.Duration, res.Err)
			}
		}
		if got["exec"] != c.want || got["in-process"] != c.want {
			t.Errorf("%s %s:\n exec       %s\n in-process %s\n want       %s", c.opts, c.args, got["exec"], got["in-process"], c.want)
		}
	}
}

// TestBothWaysSizes: a message written on whole, from a few bytes to
// past what an in-process stage's output keeps in memory (spool.Small),
// comes out the same both ways, as a stream and as a bare message.
func TestBothWaysSizes(t *testing.T) {
	for _, n := range []int{10, spool.Small - 400, spool.Small - 1, spool.Small, spool.Small + 1, 3 * spool.Small} {
		body := "Subject: size\n\n" + strings.Repeat("0123456789abcdef\n", n/17+1)[:n]
		for _, opts := range []string{"", "input=message output=message"} {
			for way, r := range ways(t) {
				e := env
				res := r.Run(context.Background(), stageLine(t, "t", "data", opts, "copy"), &e, spooled(t, body))
				if res.Err != nil || res.Message == nil {
					t.Fatalf("%s, %q, %d bytes: %v, message %v: %s", way, opts, n, res.Err, res.Message != nil, res.Stderr)
				}
				if got := read(t, res.Message); got != body {
					t.Errorf("%s, %q, %d bytes: message of %d bytes came out, not what went in", way, opts, n, len(got))
				}
				res.Message.Close()
			}
		}
	}
}

// TestMemoryMessage: a message an in-process stage wrote and that stayed
// in memory goes on to a process (exec=yes) and to another in-process
// stage, and comes out of the chain as it went in; one past what memory
// keeps goes on in a file.
func TestMemoryMessage(t *testing.T) {
	r := ways(t)["in-process"]
	for _, n := range []int{10, spool.Small - 400, spool.Small + 1} {
		body := "Subject: mixed\n\n" + strings.Repeat("0123456789abcdef\n", n/17+1)[:n]
		ch := &Chain{Runner: r, Stages: []*Stage{
			stageLine(t, "first", "data", "", "copy"),
			stageLine(t, "process", "data", "exec=yes", "copy"),
			stageLine(t, "last", "data", "", "copy"),
		}}
		e := env
		res := r.Run(context.Background(), ch.Stages[0], &e, spooled(t, body))
		if res.Err != nil || res.Message == nil {
			t.Fatalf("%d bytes: %v, message %v", n, res.Err, res.Message != nil)
		}
		small := len(body)+200 < spool.Small
		if inMemory := res.Message.File == nil; inMemory != small {
			t.Errorf("%d bytes: the first stage's message in memory %v", n, inMemory)
		}
		res.Message.Close()
		o := ch.Run(context.Background(), env, spooled(t, body))
		if o.Verdict.Action != verdict.Continue || len(o.Results) != 3 {
			t.Fatalf("%d bytes: %s after %d stages", n, o.Verdict, len(o.Results))
		}
		for _, res := range o.Results {
			if res.Err != nil || res.InProc == (res.Stage.Name == "process") {
				t.Errorf("%d bytes: %s: %v, in-process %v: %s", n, res.Stage.Name, res.Err, res.InProc, res.Stderr)
			}
		}
		if got := read(t, o.Message); got != body {
			t.Errorf("%d bytes: message of %d bytes came out, not what went in", n, len(got))
		}
		o.Close()
	}
}

// TestBothWaysChain: a chain (a reject at rcpt, a stage that always runs
// after it, one that does not) records the same runs both ways.
func TestBothWaysChain(t *testing.T) {
	got := map[string]string{}
	for way, r := range ways(t) {
		ch := &Chain{Runner: r, Stages: []*Stage{
			stageLine(t, "tag", "rcpt", "", "copy"),
			stageLine(t, "refuse", "rcpt", "", "verdict=reject exit=100"),
			stageLine(t, "skipped", "rcpt", "", "copy"),
			stageLine(t, "cleanup", "rcpt", "always=yes output=exit", "say=cleaned exit=0"),
		}}
		e := env
		e.Phase = stream.Rcpt
		o := ch.Run(context.Background(), e, nil)
		var b strings.Builder
		fmt.Fprintf(&b, "%s:", o.Verdict)
		for _, res := range o.Results {
			fmt.Fprintf(&b, " %s=%s/%d/%s", res.Stage.Name, res.Verdict.Action, res.Exit, res.Stderr)
		}
		o.Close()
		got[way] = b.String()
	}
	want := "reject 550 5.7.1 test says reject: tag=continue/0/ refuse=reject/100/ cleanup=continue/0/cleaned"
	if got["exec"] != want || got["in-process"] != want {
		t.Errorf("exec       %s\nin-process %s\nwant       %s", got["exec"], got["in-process"], want)
	}
}

// TestInProcessAbandoned: a stage that ignores its context and hangs past
// its timeout is abandoned; what it writes later reaches nothing, and the
// runner goes on serving, the same stage included.
func TestInProcessAbandoned(t *testing.T) {
	r := ways(t)["in-process"]
	st := stageLine(t, "t", "data", "output=exit timeout=200ms", "hang=1s")
	e := env
	res := r.Run(context.Background(), st, &e, spooled(t, "Subject: x\n\nbody\n"))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "timeout after 200ms") || res.Duration > time.Second {
		t.Fatalf("err %v after %s", res.Err, res.Duration)
	}
	ok := stageLine(t, "u", "data", "", "copy")
	for i := 0; i < 3; i++ {
		e := env
		res := r.Run(context.Background(), ok, &e, spooled(t, "Subject: y\n\nbody\n"))
		if res.Err != nil || res.Message == nil || read(t, res.Message) != "Subject: y\n\nbody\n" {
			t.Fatalf("after an abandoned stage: %s (%v)", summary(t, res), res.Err)
		}
		res.Message.Close()
	}
	time.Sleep(1200 * time.Millisecond) // the abandoned one writes now, to nothing
}

// TestInProcessNeverRoot: as root, and with exec=yes, a stage is a process.
func TestInProcessNeverRoot(t *testing.T) {
	r := ways(t)["in-process"]
	st := stageLine(t, "t", "data", "", "copy")
	if !r.InProcess(st) {
		t.Fatal("not in-process")
	}
	if !r.InProcess(st) || r.InProcess(stageLine(t, "t", "data", "exec=yes", "copy")) {
		t.Error("exec=yes still in-process")
	}
	defer func(f func() int) { euid = f }(euid)
	euid = func() int { return 0 }
	if r.InProcess(st) {
		t.Error("in-process as root")
	}
}

// TestHandedBack: the envelope an in-process stage hands back parsed is
// taken only when it is what the stage wrote; a stage that hands back
// one and writes another is read by what it wrote, as a process would
// be.
func TestHandedBack(t *testing.T) {
	r := ways(t)["in-process"]
	for _, args := range []string{"copy", "lie=x@example.net"} {
		st := stageLine(t, "s", "rcpt", "", args)
		line := args
		env := stream.Envelope{Phase: stream.Rcpt, ClientAddr: "192.0.2.1", MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
		res := r.Run(context.Background(), st, &env, nil)
		if res.Err != nil || res.Env == nil {
			t.Fatalf("%s: %v: %s", line, res.Err, res.Stderr)
		}
		if got := strings.Join(res.Env.Rcpts, " "); got != "b@example.com" {
			t.Errorf("%s: recipients %q, want what the stage wrote", line, got)
		}
	}
}

// TestMessageHandedBack: an in-process stage that hands back the message
// it was given, unchanged, writes no copy of it, and the chain goes on
// with the one it had; one that writes anything after saying so has
// that taken as the message, as from a process.
func TestMessageHandedBack(t *testing.T) {
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, "msg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("Subject: hello\n\nbody\n")
	msg := &spool.Message{File: f}
	for way, r := range ways(t) {
		ch := &Chain{Runner: r, Stages: []*Stage{stageLine(t, "a", "data", "", "same="), stageLine(t, "b", "data", "", "same=")}}
		env := stream.Envelope{Phase: stream.Data, ClientAddr: "192.0.2.1", MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
		o := ch.Run(context.Background(), env, msg)
		if o.Verdict.Action != verdict.Continue || o.Message == nil {
			t.Fatalf("%s: %s, message %v: %v", way, o.Verdict, o.Message, o.Results[len(o.Results)-1].Err)
		}
		if got := read(t, o.Message); got != "Subject: hello\n\nbody\n" {
			t.Errorf("%s: message %q", way, got)
		}
		if (o.Message == msg) != (way == "in-process") {
			t.Errorf("%s: the message the chain was given goes on: %v", way, o.Message == msg)
		}
		o.Close()
		st := stageLine(t, "c", "data", "", "same=Subject:%20after")
		e := env
		res := r.Run(context.Background(), st, &e, msg)
		if res.Err != nil || res.Message == nil {
			t.Fatalf("%s: written after handing back: %v, message %v", way, res.Err, res.Message)
		}
		want := "Subject:%20after"
		if way == "exec" {
			want = "Subject: hello\n\nbody\n" + want
		}
		if got := read(t, res.Message); got != want {
			t.Errorf("%s: written after handing back: message %q, want %q", way, got, want)
		}
		res.Message.Close()
	}
}
