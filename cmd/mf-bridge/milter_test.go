package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-milter"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/logger"
)

// recPath is the decision log of the last test bridge.
var recPath string

// newTestBridge serves the milter protocol on loopback with the given
// stage lines, and returns its address.
func newTestBridge(t testing.TB, lines ...string) (string, *server) {
	t.Helper()
	ch := &chain.Chain{Runner: &chain.Runner{Env: []string{"PATH=/usr/bin:/bin"}}}
	for _, l := range lines {
		st, err := chain.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ch.Stages = append(ch.Stages, st)
	}
	b := &server{log: logger.New("mf-bridge", io.Discard)}
	recPath = filepath.Join(t.TempDir(), "decisions")
	rec, err := bridge.OpenRecorder(recPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.gen.Store(&generation{cli: &root{MTA: "auto"}, cfg: &bridge.Config{Chain: ch, Log: b.log, Records: rec, InFlight: &b.inFlight}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serveConn(context.Background(), c)
		}
	}()
	return ln.Addr().String(), b
}

func dial(t *testing.T, addr string) *milter.ClientSession {
	t.Helper()
	// go-milter's server speaks protocol version 2, so the client offers
	// no more than version 2 knows.
	c := milter.NewClientWithOptions("tcp", addr, milter.ClientOptions{
		Dialer:      &net.Dialer{Timeout: 5 * time.Second},
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: milter.OptAddHeader | milter.OptChangeHeader | milter.OptChangeBody |
			milter.OptAddRcpt | milter.OptRemoveRcpt | milter.OptQuarantine,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// is checks a milter step's reply.
func is(t *testing.T, want milter.ActionCode) func(*milter.Action, error) *milter.Action {
	return func(a *milter.Action, err error) *milter.Action {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if a.Code != want {
			t.Fatalf("action %c (%d %s), want %c", a.Code, a.SMTPCode, a.SMTPText, want)
		}
		return a
	}
}

func TestMilterSession(t *testing.T) {
	dir := t.TempDir()
	rcpt := filepath.Join(dir, "rcpt")
	os.WriteFile(rcpt, []byte(`#!/bin/sh
env=$(cat)
case "$env" in *"Mf-Rcpt-To: <nobody@example.com>"*) printf 'Mf-Stream: 1\nMf-Stage: rcpt\nMf-Verdict: reject 550 5.1.1 No such user, 100%%25 sure\n\n'; exit 100;; esac
printf '%s\n\n' "$env"
`), 0o755)
	addr, b := newTestBridge(t,
		"rcpt rcpt "+rcpt,
		`seen data input=message output=headers -- sh -c 'echo "X-Seen: $TCPREMOTEIP $HELO $SENDER"'`,
		`subject data input=message output=message -- sed -e 's/^Subject: spam$/Subject: [SPAM] spam/' -e 's/^secret$/[redacted]/'`,
	)
	s := dial(t, addr)
	if err := s.Macros(milter.CodeConn, "j", "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	is(t, milter.ActContinue)(s.Conn("client.example.org", milter.FamilyInet, 2525, "192.0.2.7"))
	is(t, milter.ActContinue)(s.Helo("helo.example.org"))
	for i, subject := range []string{"spam", "second"} {
		is(t, milter.ActContinue)(s.Mail("a@example.org", nil))
		is(t, milter.ActContinue)(s.Rcpt("b@example.com", nil))
		a := is(t, milter.ActReplyCode)(s.Rcpt("nobody@example.com", nil))
		if a.SMTPCode != 550 || a.SMTPText != "5.1.1 No such user, 100%% sure" {
			t.Errorf("rcpt reply %d %q", a.SMTPCode, a.SMTPText)
		}
		var h textproto.Header
		h.Add("Subject", subject)
		h.Add("From", "a@example.org")
		is(t, milter.ActContinue)(s.Header(h))
		mods, act, err := s.BodyReadFrom(strings.NewReader("line\r\nsecret\r\n"))
		is(t, milter.ActAccept)(act, err)
		var got []string
		for _, m := range mods {
			switch m.Code {
			case milter.ActAddHeader:
				got = append(got, "add "+m.HeaderName+": "+m.HeaderValue)
			case milter.ActChangeHeader:
				got = append(got, "change "+m.HeaderName+": "+m.HeaderValue)
			case milter.ActReplBody:
				got = append(got, "body "+string(m.Body))
			default:
				got = append(got, string(rune(m.Code)))
			}
		}
		want := "add X-Seen: 192.0.2.7 helo.example.org a@example.org|body line\n[redacted]\n"
		if i == 0 {
			want = "change Subject: [SPAM] spam|" + want
		}
		if strings.Join(got, "|") != want {
			t.Errorf("message %d: edits\n%q\nwant\n%q", i+1, strings.Join(got, "|"), want)
		}
		if err := s.Abort(); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.inFlight.Load(); n != 0 {
		t.Errorf("%d messages still in flight", n)
	}
	log, _ := os.ReadFile(recPath)
	if n := strings.Count(string(log), `"phase":"data","client_addr"`); n != 2 {
		t.Errorf("%d data records:\n%s", n, log)
	}
	if n := strings.Count(string(log), `"phase":"rcpt","client_addr"`); n != 2 {
		t.Errorf("%d rcpt records:\n%s", n, log)
	}
	// Each stage run is in one record: 2 messages x (2 rcpt + 2 data).
	if n := strings.Count(string(log), `{"name":`); n != 8 {
		t.Errorf("%d stage runs recorded, want 8:\n%s", n, log)
	}
}

// TestMilterBigBody: a replaced body larger than a milter packet goes in
// pieces of at most 65535 bytes, after every other edit, nothing between.
func TestMilterBigBody(t *testing.T) {
	addr, _ := newTestBridge(t,
		`upper data input=message output=message -- sed -e 's/^Subject: .*/Subject: changed/' -e 's/x/X/g'`,
		`tag data input=message output=headers -- echo "X-Tag: 1"`,
	)
	s := dial(t, addr)
	is(t, milter.ActContinue)(s.Conn("c.example", milter.FamilyInet, 25, "192.0.2.7"))
	is(t, milter.ActContinue)(s.Mail("a@example.org", nil))
	is(t, milter.ActContinue)(s.Rcpt("b@example.com", nil))
	var h textproto.Header
	h.Add("Subject", "big")
	is(t, milter.ActContinue)(s.Header(h))
	line := strings.Repeat("x", 99) + "\r\n"
	mods, act, err := s.BodyReadFrom(strings.NewReader(strings.Repeat(line, 3000)))
	is(t, milter.ActAccept)(act, err)
	var body strings.Builder
	pieces, edits := 0, 0
	for _, m := range mods {
		if m.Code != milter.ActReplBody {
			if pieces > 0 {
				t.Fatalf("edit %c after the body", m.Code)
			}
			edits++
			continue
		}
		if len(m.Body) > 65535 {
			t.Errorf("a body piece of %d bytes", len(m.Body))
		}
		pieces++
		body.Write(m.Body)
	}
	want := strings.Repeat(strings.Repeat("X", 99)+"\n", 3000)
	if edits != 2 || pieces != 5 || body.String() != want {
		t.Errorf("%d edits, %d pieces, body of %d bytes (want 2 edits, 5 pieces, %d bytes)", edits, pieces, body.Len(), len(want))
	}
}
