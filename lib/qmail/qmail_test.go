package qmail

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"mf/lib/stream"
	"mf/lib/verdict"
)

func TestReadEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in     string
		sender string
		rcpts  []string
		exit   int // 0: no error
	}{
		{"Fa@example.org\x00Tb@example.net\x00Tc@example.net\x00\x00", "a@example.org", []string{"b@example.net", "c@example.net"}, 0},
		{"F\x00Tb@example.net\x00\x00", "", []string{"b@example.net"}, 0},
		{"F\x00\x00", "", nil, 0},
		{"F\x00\x00trailing", "", nil, 0},
		{"", "", nil, ExitFormat},
		{"Fa@example.org\x00Tb@example.net\x00", "", nil, ExitFormat}, // no closing NUL
		{"Fa@example.org", "", nil, ExitFormat},
		{"Ta@example.org\x00\x00", "", nil, ExitFormat},
		{"Fa\x00Xb\x00\x00", "", nil, ExitFormat},
		{"\x00", "", nil, ExitFormat},
	} {
		env, err := ReadEnvelope(strings.NewReader(tc.in))
		if tc.exit != 0 {
			if err == nil || ExitCode(err) != tc.exit {
				t.Errorf("%q: err %v (exit %d), want exit %d", tc.in, err, ExitCode(err), tc.exit)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if env.Sender != tc.sender || strings.Join(env.Rcpts, ",") != strings.Join(tc.rcpts, ",") {
			t.Errorf("%q: got %q %q", tc.in, env.Sender, env.Rcpts)
		}
	}
}

func TestReadEnvelopeReadError(t *testing.T) {
	_, err := ReadEnvelope(iotest.ErrReader(errors.New("boom")))
	if ExitCode(err) != ExitRead {
		t.Fatalf("err %v gives exit %d, want 54", err, ExitCode(err))
	}
}

func TestReadEnvelopeLongAddress(t *testing.T) {
	long := strings.Repeat("x", 100000) + "@example.net"
	env, err := ReadEnvelope(strings.NewReader("F\x00T" + long + "\x00\x00"))
	if err != nil || len(env.Rcpts) != 1 || env.Rcpts[0] != long {
		t.Fatalf("long address: %v", err)
	}
	_, err = ReadEnvelope(io.MultiReader(strings.NewReader("FT"), strings.NewReader(strings.Repeat("x", MaxEnvelope+10))))
	if ExitCode(err) != ExitFormat {
		t.Fatalf("endless envelope: %v", err)
	}
}

func TestEnvelopeBytesRoundTrip(t *testing.T) {
	e := &Envelope{Sender: "", Rcpts: []string{"a@b", "c@d"}}
	if got := string(e.Bytes()); got != "F\x00Ta@b\x00Tc@d\x00\x00" {
		t.Fatalf("bytes %q", got)
	}
	back, err := ReadEnvelope(bytes.NewReader(e.Bytes()))
	if err != nil || back.Sender != "" || len(back.Rcpts) != 2 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestReply(t *testing.T) {
	// What notqmail 1.09's qmail-smtpd said, measured (PROTOCOLS.md 5.6).
	for code, want := range map[int]string{
		0: "250 ok", 31: "554 mail server permanently rejected message (#5.3.0)",
		71: "451 mail server temporarily rejected message (#4.3.0)", 11: "554 envelope address too long for qq (#5.1.3)",
		12: "554 qq permanent problem (#5.3.0)", 75: "451 qq temporary problem (#4.3.0)", 99: "451 qq temporary problem (#4.3.0)",
		100: "451 qq temporary problem (#4.3.0)", 111: "451 qq temporary problem (#4.3.0)", 82: "451 qq temporary problem (#4.3.0)",
	} {
		if got := Reply(code, ""); got != want {
			t.Errorf("exit %d: %q, want %q", code, got, want)
		}
	}
	if got := Reply(82, "D5.7.1 no"); got != "554 5.7.1 no" {
		t.Errorf("custom D: %q", got)
	}
	if got := Reply(82, "Z4.7.1 later"); got != "451 4.7.1 later" {
		t.Errorf("custom Z: %q", got)
	}
}

func TestCustomText(t *testing.T) {
	for _, tc := range []struct {
		r    verdict.Reply
		want string
	}{
		{verdict.Reply{Code: 550, Status: "5.7.1", Text: "Client blocked"}, "D5.7.1 Client blocked"},
		{verdict.Reply{Code: 451, Status: "4.7.1", Text: "Over quota"}, "Z4.7.1 Over quota"},
		{verdict.Reply{Code: 554}, "D5.7.1 Message rejected"},
		{verdict.Reply{Code: 421, Text: "a\r\nb"}, "Z4.7.1 a  b"},
	} {
		if got := CustomText(tc.r); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.r, got, tc.want)
		}
	}
	if got := CustomText(verdict.Reply{Code: 550, Text: strings.Repeat("x", 500)}); len(got) != MaxCustom {
		t.Errorf("long text: %d bytes", len(got))
	}
}

func TestWriteCustom(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteCustom(int(w.Fd()), "D5.7.1 no"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _ := io.ReadAll(r)
	if string(got) != "D5.7.1 no" {
		t.Fatalf("read %q", got)
	}
	if err := WriteCustom(987, "D5.7.1 no"); !errors.Is(err, ErrNoDescriptor) {
		t.Fatalf("closed descriptor: %v", err)
	}
}

func TestParseReceived(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want Received
		auth string
	}{
		{"Received: from unknown (HELO client.example.test) (127.0.0.1)\n  by mx.example.test with SMTP; 1 Dec 2026 21:58:00 -0000", true,
			Received{Host: "unknown", Helo: "client.example.test", IP: "127.0.0.1", Local: "mx.example.test", Proto: "SMTP"}, ""},
		{"Received: from host.example.org (1.2.3.4)\n  by mx.example.test with SMTP; 1 Dec 2026 21:58:00 -0000", true,
			Received{Host: "host.example.org", Helo: "host.example.org", IP: "1.2.3.4", Local: "mx.example.test", Proto: "SMTP"}, ""},
		{"Received: from unknown (HELO x) (alice@example.org@10.0.0.1)\n  by mx with ESMTPA; 1 Dec 2026 21:58:00 -0000", true,
			Received{Host: "unknown", Helo: "x", Info: "alice@example.org", IP: "10.0.0.1", Local: "mx", Proto: "ESMTPA"}, "alice@example.org"},
		{"Received: from unknown (HELO x) (ident@10.0.0.1)\n  by mx with SMTP; date", true,
			Received{Host: "unknown", Helo: "x", Info: "ident", IP: "10.0.0.1", Local: "mx", Proto: "SMTP"}, ""},
		{"Received: from mail.example.org (mail.example.org [1.2.3.4]) by mx.example.net (Postfix) with ESMTP id X; date", false, Received{}, ""},
		{"Received: (qmail 123 invoked from network); 1 Dec 2026", false, Received{}, ""},
		{"Received: from unknown (HELO a b) (127.0.0.1)\n  by mx with SMTP; d", false, Received{}, ""},
		{"Subject: hi", false, Received{}, ""},
		{"Received: from unknown (HELO x (127.0.0.1)\n  by mx with SMTP; d", false, Received{}, ""},
	} {
		r, ok := ParseReceived([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v (%+v)", tc.in, ok, tc.ok, r)
			continue
		}
		if !ok {
			continue
		}
		if *r != tc.want || r.AuthUser() != tc.auth {
			t.Errorf("%q: %+v auth %q, want %+v auth %q", tc.in, *r, r.AuthUser(), tc.want, tc.auth)
		}
	}
}

func TestQuarantine(t *testing.T) {
	q := Quarantine{Dir: filepath.Join(t.TempDir(), "q")}
	env := stream.Envelope{ClientAddr: "192.0.2.1", Helo: "h", MailFrom: "a@example.org", Rcpts: []string{"b@example.net", "c d@example.net"}}
	msg := "Subject: held\n\nbody\n"
	id, err := q.Put(env, "looks like spam", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(q.Dir, "new", id)); err != nil {
		t.Fatal(err)
	}
	all, err := q.List()
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %v %d", err, len(all))
	}
	h := all[0]
	if h.Reason != "looks like spam" || h.Env.MailFrom != "a@example.org" || strings.Join(h.Env.Rcpts, ",") != "b@example.net,c d@example.net" || h.Env.ClientAddr != "192.0.2.1" {
		t.Fatalf("held: %+v", h)
	}
	f, s, err := h.Open()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(s.Message)
	f.Close()
	if string(got) != msg {
		t.Fatalf("message %q", got)
	}
	if _, err := q.Find(id[:5]); err != nil {
		t.Fatalf("find by prefix: %v", err)
	}
	if _, err := q.Find("../x"); err == nil {
		t.Fatal("a path is an id")
	}
	if _, err := q.Find("nope"); err == nil {
		t.Fatal("found a missing id")
	}
	if err := h.Remove(); err != nil {
		t.Fatal(err)
	}
	if all, _ := q.List(); len(all) != 0 {
		t.Fatal("removed message still listed")
	}
}

func TestQueuePassesStatusAndInput(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "qq")
	// A stand-in for qmail-queue: copies fd 0 and fd 1, exits 17.
	os.WriteFile(fake, []byte("#!/bin/sh\ncat >"+dir+"/msg\ncat <&1 >"+dir+"/env\nexit 17\n"), 0o755)
	msg, _ := os.CreateTemp(dir, "m")
	msg.WriteString("Subject: x\n\nbody\n")
	msg.Seek(0, 0)
	code, err := Queue(fake, msg, &Envelope{Sender: "a@b", Rcpts: []string{"c@d"}}, io.Discard, nil)
	if err != nil || code != 17 {
		t.Fatalf("code %d err %v", code, err)
	}
	m, _ := os.ReadFile(dir + "/msg")
	e, _ := os.ReadFile(dir + "/env")
	if string(m) != "Subject: x\n\nbody\n" || string(e) != "Fa@b\x00Tc@d\x00\x00" {
		t.Fatalf("msg %q env %q", m, e)
	}
	if code, err := Queue(filepath.Join(dir, "missing"), msg, &Envelope{}, io.Discard, nil); err == nil || code != ExitBug {
		t.Fatalf("missing program: %d %v", code, err)
	}
}
