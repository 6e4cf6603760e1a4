package scan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mf/lib/lists"
	"mf/lib/mime"
	"mf/lib/scan/outcome"
	"mf/lib/scan/rule"
	"mf/lib/state"
	"mf/lib/stream"
)

// fakeClamd finds "EVIL" and counts the streams it was sent.
func fakeClamd(t *testing.T) (addr string, scans *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			cmd := make([]byte, 10)
			io.ReadFull(c, cmd)
			var data []byte
			for {
				var k uint32
				if binary.Read(c, binary.BigEndian, &k) != nil || k == 0 {
					break
				}
				b := make([]byte, k)
				io.ReadFull(c, b)
				data = append(data, b...)
			}
			if bytes.Contains(data, []byte("EVIL")) {
				io.WriteString(c, "stream: Evil.Test FOUND\x00")
			} else {
				io.WriteString(c, "stream: OK\x00")
			}
			c.Close()
		}
	}()
	return "tcp:" + l.Addr().String(), n
}

// fakeSpamd scores a message by the number of times "SPAM" is in it,
// and waits for hold to be closed before answering a message holding
// "SLOW".
func fakeSpamd(t *testing.T, hold chan struct{}) (addr string, users chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	users = make(chan string, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				br.ReadString('\n')
				user, length := "", 0
				for {
					l, _ := br.ReadString('\n')
					l = strings.TrimSpace(l)
					if l == "" {
						break
					}
					k, v, _ := strings.Cut(l, ": ")
					switch k {
					case "User":
						user = v
					case "Content-length":
						length, _ = strconv.Atoi(v)
					}
				}
				body := make([]byte, length)
				io.ReadFull(br, body)
				users <- user
				if bytes.Contains(body, []byte("SLOW")) {
					<-hold
				}
				score := float64(bytes.Count(body, []byte("SPAM"))) * 3
				spam := "False"
				if score >= 5 {
					spam = "True"
				}
				syms := "FAKE_RULE"
				fmt.Fprintf(c, "SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: %s ; %.1f / 5.0\r\n\r\n%s", len(syms), spam, score, syms)
			}()
		}
	}()
	return "tcp:" + l.Addr().String(), users
}

func engine(t *testing.T, line string) *Engine {
	e, err := ParseEngine(line)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func msgOf(env *stream.Envelope, s string) *Msg {
	return &Msg{Env: env, Size: int64(len(s)), Open: func() (io.Reader, error) { return strings.NewReader(s), nil }}
}

func TestClamdCacheFeedback(t *testing.T) {
	addr, scans := fakeClamd(t)
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sc := &Scanner{Engines: []*Engine{engine(t, "av clamd addr="+addr+" block=client:virus:1h")}, Store: st, CacheTTL: time.Hour, Limits: mime.DefaultLimits}
	env := &stream.Envelope{Phase: stream.Data, ClientAddr: "192.0.2.9"}
	ctx := context.Background()
	rep, err := sc.Scan(ctx, msgOf(env, "Received: one\nSubject: x\n\nan EVIL body\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome.Action != outcome.Reject || rep.By != "av" || rep.Outcome.Verdict().Reply.String() != "550 5.7.1 Message content rejected" {
		t.Errorf("outcome %+v by %s", rep.Outcome, rep.By)
	}
	if rep.Reason != "av: infected Evil.Test" || rep.Trace != "by=av av=infected blocked=1" {
		t.Errorf("reason %q trace %q", rep.Reason, rep.Trace)
	}
	ds, _ := lists.Dynamic(ctx, st, "virus")
	if len(ds) != 1 || ds[0].Entry != "192.0.2.9" || ds[0].By != "mf-scan" {
		t.Errorf("dynamic list %+v", ds)
	}
	// The same body under another header: from the cache.
	rep, err = sc.Scan(ctx, msgOf(env, "Received: two\nSubject: x\n\nan EVIL body\n"))
	if err != nil || rep.Outcome.Action != outcome.Reject || !rep.Results[0].Cached || scans.Load() != 1 {
		t.Errorf("cached: %+v %v, %d scans", rep, err, scans.Load())
	}
	// Another body is scanned.
	rep, _ = sc.Scan(ctx, msgOf(env, "Subject: x\n\na clean body\n"))
	if rep.Outcome.Action != outcome.Continue || scans.Load() != 2 || !strings.Contains(strings.Join(rep.Headers, "\n"), "X-Virus-Status: Clean") {
		t.Errorf("clean: %+v, %d scans", rep, scans.Load())
	}
	// Dry run: no feedback, no cache entry.
	sc.DryRun = true
	env.ClientAddr = "192.0.2.10"
	sc.Scan(ctx, msgOf(env, "Subject: y\n\nanother EVIL body\n"))
	sc.Scan(ctx, msgOf(env, "Subject: y\n\nanother EVIL body\n"))
	if ds, _ := lists.Dynamic(ctx, st, "virus"); len(ds) != 1 || scans.Load() != 4 {
		t.Errorf("dry run wrote state: %+v, %d scans", ds, scans.Load())
	}
}

func TestClamdDown(t *testing.T) {
	sc := &Scanner{Engines: []*Engine{engine(t, "av clamd addr=tcp:127.0.0.1:1 connect-timeout=1s")}, Limits: mime.DefaultLimits}
	env := &stream.Envelope{Phase: stream.Data}
	if _, err := sc.Scan(context.Background(), msgOf(env, "Subject: x\n\nbody\n")); err == nil || !strings.Contains(err.Error(), "engine av: clamd unavailable") {
		t.Errorf("err %v", err)
	}
	sc.Engines[0] = engine(t, "av clamd addr=tcp:127.0.0.1:1 connect-timeout=1s on-error=tempfail")
	rep, err := sc.Scan(context.Background(), msgOf(env, "Subject: x\n\nbody\n"))
	if err != nil || rep.Outcome.Action != outcome.Tempfail || rep.Results[0].Status != "error" {
		t.Errorf("on-error: %+v %v", rep, err)
	}
}

func TestSpamdUsersAndSlots(t *testing.T) {
	hold := make(chan struct{})
	addr, users := fakeSpamd(t, hold)
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	line := "sa spamd addr=" + addr + " user=rcpt concurrency=1 slot-wait=100ms reject=8 subject=[S]"
	newScanner := func() *Scanner {
		return &Scanner{Engines: []*Engine{engine(t, line)}, Store: st, Limits: mime.DefaultLimits}
	}
	ctx := context.Background()
	env := &stream.Envelope{Phase: stream.Data, Rcpts: []string{"a@example.org", "B@example.org", "A@EXAMPLE.ORG"}}
	rep, err := newScanner().Scan(ctx, msgOf(env, "Subject: x\n\nSPAM SPAM\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{<-users, <-users}
	if len(got) != 2 || len(users) != 0 || !(got[0] == "a@example.org" && got[1] == "b@example.org" || got[1] == "a@example.org" && got[0] == "b@example.org") {
		t.Errorf("users %q, %d more", got, len(users))
	}
	if rep.Outcome.Action != outcome.Tag || rep.Subject != "[S]" || len(rep.Results) != 2 {
		t.Errorf("tag: %+v", rep)
	}
	flags := 0
	for _, h := range rep.Headers {
		if strings.HasPrefix(h, "X-Spam-Flag: YES") {
			flags++
		}
	}
	if flags != 1 {
		t.Errorf("%d X-Spam-Flag fields in %q", flags, rep.Headers)
	}
	rep, _ = newScanner().Scan(ctx, msgOf(&stream.Envelope{Phase: stream.Data, Rcpts: []string{"c@example.org"}}, "Subject: x\n\nSPAM SPAM SPAM\n"))
	<-users
	if rep.Outcome.Action != outcome.Reject || rep.Subject != "" {
		t.Errorf("reject: %+v", rep)
	}

	// One slot per user: while a scan for d@ is held, the next one for
	// d@ is busy; one for e@ is not.
	slowEnv := &stream.Envelope{Phase: stream.Data, Rcpts: []string{"d@example.org"}}
	done := make(chan *Report)
	go func() {
		r, _ := newScanner().Scan(ctx, msgOf(slowEnv, "Subject: x\n\nSLOW\n"))
		done <- r
	}()
	<-users // the slow one is in spamd
	rep, err = newScanner().Scan(ctx, msgOf(slowEnv, "Subject: x\n\nquick\n"))
	if err != nil || rep.Outcome.Action != outcome.Tempfail || rep.Results[0].Status != "busy" {
		t.Errorf("busy: %+v %v", rep, err)
	}
	rep, err = newScanner().Scan(ctx, msgOf(&stream.Envelope{Phase: stream.Data, Rcpts: []string{"e@example.org"}}, "Subject: x\n\nquick\n"))
	<-users
	if err != nil || rep.Outcome.Action != outcome.Continue {
		t.Errorf("other user: %+v %v", rep, err)
	}
	close(hold)
	if r := <-done; r.Outcome.Action != outcome.Continue {
		t.Errorf("slow: %+v", r)
	}
	rep, _ = newScanner().Scan(ctx, msgOf(slowEnv, "Subject: x\n\nquick\n"))
	<-users
	if rep.Outcome.Action != outcome.Continue {
		t.Errorf("after release: %+v", rep)
	}
}

func TestBodyHash(t *testing.T) {
	sum := func(s string) string {
		h := newBodyHash()
		for i := 0; i < len(s); i += 3 { // in pieces, across the blank line
			h.Write([]byte(s[i:min(i+3, len(s))]))
		}
		return h.sum()
	}
	if sum("A: 1\n\nbody") != sum("B: 2\nC: 3\n\nbody") || sum("A: 1\r\n\r\nbody") != sum("A: 1\n\nbody") {
		t.Error("same body, different hash")
	}
	if sum("A: 1\n\nbody") == sum("A: 1\n\nbodz") {
		t.Error("different bodies, same hash")
	}
	if sum("A: 1\nB: 2") == sum("A: 1\nB: 3") || sum("A: 1\nB: 2")[0] != 'm' {
		t.Error("no body: the whole message is hashed")
	}
}

func TestParseEngine(t *testing.T) {
	for _, c := range []struct{ line, err string }{
		{"av", "want NAME"},
		{"a/v clamd addr=unix:/x", "engine name"},
		{"av clamd", "no addr="},
		{"av clamd addr=unix:/x -- /bin/true", "runs no program"},
		{"av clamd addr=nohost", "want unix:/PATH or tcp:HOST:PORT"},
		{"av clamd addr=unix:/x timeout=-1s", "bad duration"},
		{"av clamd addr=unix:/x max-size=0", "scan nothing"},
		{"av clamd addr=unix:/x user=bob", "not an option of a clamd engine"},
		{"av clamd addr=unix:/x reply=\"451 4.7.1 x\"", "reject needs a 5xx reply"},
		{"av clamd addr=unix:/x on-error=explode", "unknown outcome"},
		{"sa spamd addr=tcp:h:1 reject=x", "want a score"},
		{"sa spamd addr=tcp:h:1 command=process", "want check, symbols"},
		{"p program", "no program"},
		{"p program -- true", "absolute path"},
		{"p program 300=reject -- /bin/true", "over 255"},
		{"x virustotal", "unknown kind"},
	} {
		_, err := ParseEngine(c.line)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: err %v, want %q", c.line, err, c.err)
		}
	}
	e := engine(t, `p program 1=reject 2=tag reply="550 5.7.1 No" header="X-P: 1" -- /bin/sh -c "exit 1"`)
	if e.Exits[1].Reply == nil || e.Exits[1].Reply.Text != "No" || e.Exits[2].Headers[0] != "X-P: 1" || e.Exits[0].Action != outcome.Continue || len(e.Argv) != 3 {
		t.Errorf("program engine %+v", e)
	}
}

func TestProgram(t *testing.T) {
	e := engine(t, `p program 1=reject timeout=2s -- /bin/sh -c "grep -q BAD && exit 1; echo X-Checked: $SENDER"`)
	sc := &Scanner{Engines: []*Engine{e}, Limits: mime.DefaultLimits}
	env := &stream.Envelope{Phase: stream.Data, MailFrom: "a@example.org"}
	rep, err := sc.Scan(context.Background(), msgOf(env, "Subject: x\n\nfine\n"))
	if err != nil || rep.Outcome.Action != outcome.Continue || rep.Headers[0] != "X-Checked: a@example.org" {
		t.Errorf("fine: %+v %v", rep, err)
	}
	rep, err = sc.Scan(context.Background(), msgOf(env, "Subject: x\n\nBAD\n"))
	if err != nil || rep.Outcome.Action != outcome.Reject {
		t.Errorf("bad: %+v %v", rep, err)
	}
}

// A panic inside an engine, which runs in a goroutine of its own, comes
// back to the goroutine that called Scan, where the command (or mf-bridge,
// for a stage run in-process) recovers it: it never ends the process.
func TestEnginePanicReachesCaller(t *testing.T) {
	e := engine(t, `p program timeout=2s -- /bin/true`)
	sc := &Scanner{Engines: []*Engine{e}, Limits: mime.DefaultLimits}
	env := &stream.Envelope{Phase: stream.Data, MailFrom: "a@example.org"}
	var calls atomic.Int32
	m := &Msg{Env: env, Size: 10, Open: func() (io.Reader, error) {
		if calls.Add(1) > 1 {
			panic("broken reader")
		}
		return strings.NewReader("Subject: x\n\nfine\n"), nil
	}}
	defer func() {
		if p := recover(); p == nil {
			t.Error("Scan returned: want the engine's panic, here")
		}
	}()
	sc.Scan(context.Background(), m)
}

// TestDetectOnlyForTypeRules: a part's type is sniffed from its content
// only when a rule asks for it (a type rule), and then a disguised part
// is told by what it is.
func TestDetectOnlyForTypeRules(t *testing.T) {
	msg := "From: a@example.org\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=a.txt\n\n<html><body>hi</body></html>\n--b--\n"
	for _, c := range []struct {
		rules string
		want  string // the attachment's DetectedType
	}{
		{"reject filename *.exe\n", ""},
		{"tag type text/html\n", "text/html"},
	} {
		rules, err := rule.Parse(strings.NewReader(c.rules), "rules")
		if err != nil {
			t.Fatal(err)
		}
		s := &Scanner{Rules: rules, Limits: mime.DefaultLimits}
		w, err := s.walk(&Msg{Open: func() (io.Reader, error) { return strings.NewReader(msg), nil }})
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Parts) != 2 || w.Parts[1].DetectedType != c.want {
			t.Errorf("rules %q: parts %+v, want the attachment detected as %q", c.rules, w.Parts, c.want)
		}
	}
}
