package stream

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mf/internal/golden"
	"mf/lib/verdict"
)

// messages are the real messages in testdata/msg, by file name.
func messages(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/msg/*.eml")
	if err != nil || len(paths) < 10 {
		t.Fatalf("testdata/msg: %d messages, %v", len(paths), err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func fullEnvelope() Envelope {
	v := verdict.Verdict{Action: verdict.Reject, Reply: verdict.Reply{Code: 550, Status: "5.7.1", Text: "Message rejected"}}
	return Envelope{
		Phase:      "data",
		QueueID:    "4BxYz1",
		ClientAddr: "192.0.2.7",
		ClientName: "mail.example.org",
		Helo:       "mail.example.org",
		AuthUser:   "alice",
		MailFrom:   "alice@example.org",
		Rcpts:      []string{"bob@example.com", "carol@example.com"},
		Macros:     []Macro{{"{tls_version}", "TLSv1.3"}, {"j", "mx.example.com"}},
		Verdict:    &v,
		AddHeaders: []string{"X-Mf-List: 20-block-clients"},
		Trace:      []string{"mf-lists reject 0.4ms"},
	}
}

func writeStream(t testing.TB, env *Envelope, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, env); err != nil {
		t.Fatal(err)
	}
	b.Write(msg)
	return b.Bytes()
}

func readAll(t testing.TB, in []byte, kind Input, bare Envelope) (*Stream, []byte) {
	t.Helper()
	s, err := Read(bytes.NewReader(in), kind, bare)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	msg, err := io.ReadAll(s.Message)
	if err != nil {
		t.Fatal(err)
	}
	return s, msg
}

func TestRoundTripRealMessages(t *testing.T) {
	envs := map[string]Envelope{
		"full":        fullEnvelope(),
		"null-sender": {Phase: "data", ClientAddr: "2001:db8::25", Rcpts: []string{"postmaster"}},
	}
	for name, msg := range messages(t) {
		for ename, env := range envs {
			t.Run(name+"/"+ename, func(t *testing.T) {
				in := writeStream(t, &env, msg)
				s, got := readAll(t, in, AutoInput, Envelope{})
				if !reflect.DeepEqual(s.Env, env) {
					t.Errorf("envelope:\ngot  %#v\nwant %#v", s.Env, env)
				}
				if !bytes.Equal(got, msg) {
					t.Errorf("message changed: %d bytes in, %d out", len(msg), len(got))
				}
				if !bytes.Equal(s.Raw, in[:len(in)-len(msg)]) {
					t.Errorf("Raw = %q, want the envelope block as written", s.Raw)
				}
				// A stage that passes the stream on gives back every byte.
				s, _ = readAll(t, in, StreamInput, Envelope{})
				s.Message = bufio.NewReader(bytes.NewReader(msg))
				var out bytes.Buffer
				if err := passOn(s, &out); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), in) {
					t.Error("PassOn changed the stream")
				}
			})
		}
	}
}

func TestLineEndingsOfTestMessages(t *testing.T) {
	// The round trip above must cover both line endings, or it proves less
	// than it seems.
	ms := messages(t)
	var lf, crlf int
	for _, m := range ms {
		if bytes.Contains(m, []byte("\r\n")) {
			crlf++
		} else if bytes.Contains(m, []byte("\n")) {
			lf++
		}
	}
	if lf < 3 || crlf < 3 {
		t.Errorf("testdata/msg has %d LF and %d CRLF messages, want 3 or more of each", lf, crlf)
	}
}

func TestBareMessage(t *testing.T) {
	for name, msg := range messages(t) {
		bare := Envelope{MailFrom: "alice@example.org", Rcpts: []string{"bob@example.com"}, ClientAddr: "192.0.2.7"}
		s, got := readAll(t, msg, AutoInput, bare)
		if s.Raw != nil {
			t.Errorf("%s: bare message read as a stream", name)
		}
		want := bare
		want.Phase = "data"
		if !reflect.DeepEqual(s.Env, want) {
			t.Errorf("%s: envelope %#v, want %#v", name, s.Env, want)
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("%s: message changed", name)
		}
		// PassOn of a bare message writes a stream: the envelope, then the
		// message as it came.
		s, _ = readAll(t, msg, AutoInput, bare)
		s.Message = bufio.NewReader(bytes.NewReader(msg))
		var out bytes.Buffer
		if err := passOn(s, &out); err != nil {
			t.Fatal(err)
		}
		back, body := readAll(t, out.Bytes(), StreamInput, Envelope{})
		if !reflect.DeepEqual(back.Env, want) || !bytes.Equal(body, msg) {
			t.Errorf("%s: PassOn of a bare message does not read back", name)
		}
	}
}

func TestBareMessageStage(t *testing.T) {
	s, _ := readAll(t, []byte("Subject: x\n\nbody\n"), AutoInput, Envelope{})
	if s.Env.Phase != "data" || !s.Env.HasMessage() {
		t.Errorf("bare message stage %q, want data", s.Env.Phase)
	}
	s, _ = readAll(t, nil, AutoInput, Envelope{Phase: "rcpt", Rcpts: []string{"a@b"}})
	if s.Env.Phase != "rcpt" {
		t.Errorf("bare stage %q, want rcpt kept", s.Env.Phase)
	}
}

// A message from a stranger that starts like a stream must not be able to
// bring its own envelope, verdict included, when the input is forced to
// be a message.
func TestInputMessageForcesBare(t *testing.T) {
	msg := []byte("Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: accept\nMf-Mail-From: <forged@example.org>\n\nSubject: hi\n\nbody\n")
	bare := Envelope{MailFrom: "real@example.net", Rcpts: []string{"bob@example.com"}}

	s, got := readAll(t, msg, MessageInput, bare)
	if s.Raw != nil || s.Env.Verdict != nil || s.Final() {
		t.Errorf("--input message read the message's own envelope: %#v", s.Env)
	}
	if s.Env.MailFrom != "real@example.net" || s.Env.Phase != "data" {
		t.Errorf("envelope %#v, want the bare one", s.Env)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("message = %q, want all of the input", got)
	}

	// Auto reads it as the stream it looks like; that is what the flag is for.
	s, got = readAll(t, msg, AutoInput, bare)
	if !s.Final() || s.Env.MailFrom != "forged@example.org" || string(got) != "Subject: hi\n\nbody\n" {
		t.Errorf("auto input: env %#v, message %q", s.Env, got)
	}
	if !IsStream(bufio.NewReader(strings.NewReader("mf-stream: 1\n"))) {
		t.Error("IsStream is case-sensitive")
	}
	if IsStream(bufio.NewReader(strings.NewReader("Mf-Strea"))) {
		t.Error("IsStream on a short input")
	}
}

func TestStreamInputRefusesBareMessage(t *testing.T) {
	for _, in := range []string{"Subject: hi\n\nbody\n", "Mf-Stage: data\n\n", "\nbody\n", ""} {
		if _, err := Read(strings.NewReader(in), StreamInput, Envelope{}); err == nil {
			t.Errorf("Read(%q, StreamInput) succeeded", in)
		}
	}
}

func TestEnvelopeOnlyStreams(t *testing.T) {
	env := Envelope{
		Phase:      "rcpt",
		ClientAddr: "192.0.2.7",
		Helo:       "mx.example.org",
		MailFrom:   "alice@example.org",
		Rcpts:      []string{"bob@example.com", "carol@example.com", "dave@example.com"},
	}
	in := writeStream(t, &env, nil)
	s, msg := readAll(t, in, AutoInput, Envelope{})
	if !reflect.DeepEqual(s.Env, env) {
		t.Errorf("envelope %#v, want %#v", s.Env, env)
	}
	if len(msg) != 0 || s.Env.HasMessage() {
		t.Errorf("rcpt stream has a message: %q", msg)
	}
	if got := s.Env.CurrentRcpts(); !reflect.DeepEqual(got, []string{"dave@example.com"}) {
		t.Errorf("CurrentRcpts at rcpt = %q, want the last recipient", got)
	}
	env.Phase = "data"
	if got := env.CurrentRcpts(); len(got) != 3 {
		t.Errorf("CurrentRcpts at data = %q, want all three", got)
	}
	if got := (&Envelope{Phase: "rcpt"}).CurrentRcpts(); len(got) != 0 {
		t.Errorf("CurrentRcpts without recipients = %q", got)
	}

	for _, tt := range []struct {
		env  Envelope
		want string
	}{
		{Envelope{Phase: "connect", ClientAddr: "192.0.2.7"},
			"Mf-Stream: 1\nMf-Stage: connect\nMf-Client-Addr: 192.0.2.7\n\n"},
		{Envelope{Phase: "helo", Helo: "x"},
			"Mf-Stream: 1\nMf-Stage: helo\nMf-Helo: x\n\n"},
		// From mail on, the sender is always written: <> is the null sender.
		{Envelope{Phase: "mail"},
			"Mf-Stream: 1\nMf-Stage: mail\nMf-Mail-From: <>\n\n"},
		{Envelope{},
			"Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <>\n\n"},
	} {
		got := writeStream(t, &tt.env, nil)
		if string(got) != tt.want {
			t.Errorf("Write(%#v) = %q, want %q", tt.env, got, tt.want)
		}
		s, _ := readAll(t, got, AutoInput, Envelope{})
		if s.Env.MailFrom != "" || s.Env.HasMessage() != (s.Env.Phase == "data") {
			t.Errorf("read back %#v", s.Env)
		}
	}
}

// hostile are values a client can send: every one must come back exactly
// and stay inside its own field.
var hostile = []string{
	"a@b>\r\nMf-Verdict: accept",
	"a@b>\nMf-Verdict: accept\n\nSubject: injected",
	"\r\n",
	"\n\n",
	"\r",
	"nul\x00byte",
	"\x00",
	"tab\there",
	"\t",
	" leading",
	"trailing ",
	"  both  ",
	" ",
	"100%",
	"%41%",
	"%0D%0A",
	"%%",
	"\xff\xfe not UTF-8 \xc3",
	"\xc3\xa9t\xc3\xa9 UTF-8",
	"\x7f del",
	"\x1b[31mred",
	"<>",
	"<<a@b>>",
	"a@b>",
	"<a@b",
	" <a@b> ",
	": colon",
	"Mf-Verdict: accept",
	"\u00a0nbsp\u00a0",
	"\u2028line separator",
	strings.Repeat("x", 5000),
}

func TestHostileValuesRoundTrip(t *testing.T) {
	set := map[string]func(e *Envelope, v string){
		"QueueID":    func(e *Envelope, v string) { e.QueueID = v },
		"ClientAddr": func(e *Envelope, v string) { e.ClientAddr = v },
		"ClientName": func(e *Envelope, v string) { e.ClientName = v },
		"Helo":       func(e *Envelope, v string) { e.Helo = v },
		"AuthUser":   func(e *Envelope, v string) { e.AuthUser = v },
		"MailFrom":   func(e *Envelope, v string) { e.MailFrom = v },
		"Rcpt":       func(e *Envelope, v string) { e.Rcpts = []string{"first@example.com", v, "last@example.com"} },
		"MacroValue": func(e *Envelope, v string) { e.Macros = []Macro{{"{mail_addr}", v}} },
		"Trace":      func(e *Envelope, v string) { e.Trace = []string{v} },
		"Quarantine": func(e *Envelope, v string) {
			e.Verdict = &verdict.Verdict{Action: verdict.Quarantine, Reply: verdict.Reply{Text: strings.TrimSpace(v)}}
		},
	}
	for field, f := range set {
		for _, v := range hostile {
			env := Envelope{Phase: "data", MailFrom: "x@example.org"}
			f(&env, v)
			if env.Verdict != nil && env.Verdict.Reply.Text == "" {
				continue // "quarantine" alone
			}
			in := writeStream(t, &env, []byte("Subject: s\n\nbody\n"))
			block := in[:bytes.Index(in, []byte("\n\n"))+2]
			// One line per field, nothing else: no value opened a field
			// of its own or ended the block.
			want := 3 + len(env.Rcpts) + len(env.Macros) + len(env.Trace)
			for _, s := range []string{env.QueueID, env.ClientAddr, env.ClientName, env.Helo, env.AuthUser} {
				if s != "" {
					want++
				}
			}
			if env.Verdict != nil {
				want++
			}
			if n := bytes.Count(block, []byte("\n")); n != want+1 {
				t.Errorf("%s=%q: envelope has %d lines, want %d:\n%s", field, v, n, want+1, block)
			}
			if bytes.ContainsAny(block[:len(block)-2], "\r\x00\t") {
				t.Errorf("%s=%q: control byte in envelope %q", field, v, block)
			}
			s, msg := readAll(t, in, AutoInput, Envelope{})
			if !reflect.DeepEqual(s.Env, env) {
				t.Errorf("%s=%q: read back\n%#v\nwant\n%#v", field, v, s.Env, env)
			}
			if string(msg) != "Subject: s\n\nbody\n" {
				t.Errorf("%s=%q: message %q", field, v, msg)
			}
			if field != "Quarantine" && s.Env.Verdict != nil {
				t.Errorf("%s=%q: value injected a verdict %v", field, v, s.Env.Verdict)
			}
		}
	}
}

func TestCRLFInjectionGivesNoVerdict(t *testing.T) {
	env := Envelope{
		Phase:    "rcpt",
		MailFrom: "a@b>\r\nMf-Verdict: accept",
		Rcpts:    []string{"a@b>\r\nMf-Verdict: accept\r\n\r\n"},
		Helo:     "x\r\nMf-Rcpt-To: <root@localhost>",
	}
	in := writeStream(t, &env, nil)
	golden.Check(t, "crlf-injection.golden", in)
	s, _ := readAll(t, in, StreamInput, Envelope{})
	if s.Env.Verdict != nil || s.Final() {
		t.Fatalf("injection produced a verdict: %v", s.Env.Verdict)
	}
	if len(s.Env.Rcpts) != 1 || s.Env.Rcpts[0] != env.Rcpts[0] {
		t.Errorf("recipients %q, want the one hostile recipient", s.Env.Rcpts)
	}
}

func TestWriteGolden(t *testing.T) {
	env := fullEnvelope()
	env.Helo = " [192.0.2.7] "
	env.AuthUser = "al%ice\x00"
	env.Macros = append(env.Macros, Macro{"{cert_subject}", "/CN=caf\xe9 \t"})
	golden.Check(t, "full-envelope.golden", writeStream(t, &env, nil))
}

func TestFinal(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"", false},
		{"Mf-Verdict: continue\n", false},
		{"Mf-Verdict: accept\n", true},
		{"Mf-Verdict: discard\n", true},
		{"Mf-Verdict: quarantine virus\n", true},
		{"Mf-Verdict: reject\n", true},
		{"Mf-Verdict: tempfail 451 4.7.1 Later\n", true},
	} {
		s, _ := readAll(t, []byte("Mf-Stream: 1\nMf-Stage: data\n"+tt.v+"\n"), AutoInput, Envelope{})
		if s.Final() != tt.want {
			t.Errorf("%q: Final() = %v", tt.v, s.Final())
		}
	}
}

func TestReadRepeatedFields(t *testing.T) {
	in := "Mf-Stream: 1\nMf-Stage: data\n" +
		"Mf-Rcpt-To: <a@example.com>\nMf-Rcpt-To: b@example.com\nMf-Rcpt-To: <>\n" +
		"Mf-Macro: j mx.example.com\nMf-Macro: {daemon_name} MTA v4\nMf-Macro: i\n" +
		"Mf-Add-Header: X-One: 1\nMf-Add-Header: X-Two:2\n" +
		"Mf-Trace: a\nMf-Trace: b\n\n"
	s, _ := readAll(t, []byte(in), AutoInput, Envelope{})
	want := Envelope{
		Phase:      "data",
		Rcpts:      []string{"a@example.com", "b@example.com", ""},
		Macros:     []Macro{{"j", "mx.example.com"}, {"{daemon_name}", "MTA v4"}, {"i", ""}},
		AddHeaders: []string{"X-One: 1", "X-Two:2"},
		Trace:      []string{"a", "b"},
	}
	if !reflect.DeepEqual(s.Env, want) {
		t.Errorf("got  %#v\nwant %#v", s.Env, want)
	}
}

// A person types a stream by hand: field names in any case, CRLF, folded
// lines, and the block is passed on exactly as typed.
func TestHandTypedStream(t *testing.T) {
	in := "mf-stream:   1\r\nMF-STAGE: data\r\nmf-mail-from:\r\n  <alice@example.org>\r\nMf-Verdict: reject 554 5.7.1 No\r\n\r\nSubject: x\r\n\r\nbody\r\n"
	s, msg := readAll(t, []byte(in), AutoInput, Envelope{})
	if s.Env.MailFrom != "alice@example.org" || s.Env.Verdict == nil || s.Env.Verdict.Reply.Code != 554 {
		t.Errorf("envelope %#v", s.Env)
	}
	if string(msg) != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("message %q", msg)
	}
	s, err := Read(strings.NewReader(in), AutoInput, Envelope{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := passOn(s, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != in {
		t.Errorf("PassOn wrote\n%q\nwant the input unchanged\n%q", out.String(), in)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"unknown field", "Mf-Stream: 1\nMf-Stage: data\nMf-Colour: red\n\n", "unknown field"},
		{"X- field", "Mf-Stream: 1\nMf-Stage: data\nX-Spam: yes\n\n", "unknown field"},
		{"duplicate stage", "Mf-Stream: 1\nMf-Stage: data\nMf-Stage: rcpt\n\n", "given twice"},
		{"duplicate helo", "Mf-Stream: 1\nMf-Stage: data\nMf-Helo: a\nMf-Helo: b\n\n", "given twice"},
		{"duplicate sender", "Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@b>\nmf-mail-from: <c@d>\n\n", "given twice"},
		{"duplicate verdict", "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: continue\nMf-Verdict: accept\n\n", "given twice"},
		{"duplicate version", "Mf-Stream: 1\nMf-Stream: 1\nMf-Stage: data\n\n", "given twice"},
		{"no Mf-Stream", "Mf-Stage: data\nMf-Helo: x\n\n", "no Mf-Stream"},
		{"no Mf-Stage", "Mf-Stream: 1\nMf-Helo: x\n\n", "no Mf-Stage"},
		{"version 2", "Mf-Stream: 2\nMf-Stage: data\n\n", "version \"2\""},
		{"empty version", "Mf-Stream:\nMf-Stage: data\n\n", "version"},
		{"Mf-Stream second", "Mf-Stage: data\nMf-Stream: 1\n\n", "first field"},
		{"unknown stage", "Mf-Stream: 1\nMf-Stage: body\n\n", "unknown phase"},
		{"bad escape", "Mf-Stream: 1\nMf-Stage: data\nMf-Helo: 100%\n\n", "two hex digits"},
		{"bad escape in stage", "Mf-Stream: 1\nMf-Stage: d%zzata\n\n", "two hex digits"},
		{"bad verdict", "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 450 4.7.1 x\n\n", "5xx"},
		{"bad add-header", "Mf-Stream: 1\nMf-Stage: data\nMf-Add-Header: no colon\n\n", "Name: value"},
		{"bad add-header name", "Mf-Stream: 1\nMf-Stage: data\nMf-Add-Header: X Bad: v\n\n", "bad header field name"},
		{"macro without name", "Mf-Stream: 1\nMf-Stage: data\nMf-Macro: %20v\n\n", "no macro name"},
		{"no blank line", "Mf-Stream: 1\nMf-Stage: data\n", "not ended by an empty line"},
		{"no blank line, message follows", "Mf-Stream: 1\nMf-Stage: data\nSubject: x", "not ended by an empty line"},
		{"bad line", "Mf-Stream: 1\nMf-Stage: data\nno colon here\n\n", "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.in), StreamInput, Envelope{})
			if err == nil {
				t.Fatalf("Read(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read(%q) error %q, want it to say %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestErrorNamesTheLine(t *testing.T) {
	_, err := Read(strings.NewReader("Mf-Stream: 1\nMf-Stage: data\nMf-Helo: x\nMf-Bogus: y\n\n"), StreamInput, Envelope{})
	if err == nil || !strings.Contains(err.Error(), "line 4: Mf-Bogus") {
		t.Errorf("error %v, want it to name line 4 and the field", err)
	}
}

func TestMaxEnvelope(t *testing.T) {
	// Many short fields and one long line both hit the bound.
	var many strings.Builder
	many.WriteString("Mf-Stream: 1\nMf-Stage: data\n")
	for many.Len() <= MaxEnvelope {
		many.WriteString("Mf-Trace: mf-lists continue 0.1ms\n")
	}
	many.WriteString("\nbody\n")
	long := "Mf-Stream: 1\nMf-Stage: data\nMf-Trace: " + strings.Repeat("x", MaxEnvelope) + "\n\n"
	never := "Mf-Stream: 1\nMf-Stage: data\nMf-Trace: " + strings.Repeat("y", 3*MaxEnvelope)
	for name, in := range map[string]string{"many": many.String(), "long": long, "never ends": never} {
		_, err := Read(strings.NewReader(in), AutoInput, Envelope{})
		if err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("%s: error %v, want envelope too long", name, err)
		}
	}
	// Just under the bound is fine, even in lines longer than the read
	// buffer.
	v := strings.Repeat("z", 200<<10)
	env := Envelope{Phase: "data", Trace: []string{v, v, v}}
	s, _ := readAll(t, writeStream(t, &env, []byte("x")), AutoInput, Envelope{})
	if !reflect.DeepEqual(s.Env, env) {
		t.Error("long trace lines did not round-trip")
	}
}

func TestWriteError(t *testing.T) {
	env := fullEnvelope()
	if err := Write(failWriter{}, &env); err == nil {
		t.Error("Write to a failing writer succeeded")
	}
	s, _ := readAll(t, writeStream(t, &env, []byte("m")), AutoInput, Envelope{})
	if err := passOn(s, failWriter{}); err == nil {
		t.Error("PassOn to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestUnbracket(t *testing.T) {
	for in, want := range map[string]string{
		"<a@b>":     "a@b",
		" <a@b> ":   "a@b",
		"a@b":       "a@b",
		"<>":        "",
		"":          "",
		"<<a@b>>":   "<a@b>",
		"<a@b":      "<a@b",
		"a@b>":      "a@b>",
		"< a@b >":   " a@b ",
		"<":         "<",
		"\t<x>\r\n": "x",
	} {
		if got := Unbracket(in); got != want {
			t.Errorf("Unbracket(%q) = %q, want %q", in, got, want)
		}
	}
}

// A macro name ends at the first space, so Write refuses a name that
// would read back as another macro, rather than write a stream the next
// stage misreads or refuses.
func TestWriteRefusesBadMacroName(t *testing.T) {
	for _, name := range []string{"", " ", "a b", "j "} {
		env := Envelope{Phase: "data", Macros: []Macro{{name, "v"}}}
		if err := Write(io.Discard, &env); err == nil {
			t.Errorf("Write with macro name %q succeeded", name)
		}
	}
	env := Envelope{Phase: "data", Macros: []Macro{{"{i}", ""}, {"\tj", " v "}}}
	s, _ := readAll(t, writeStream(t, &env, nil), AutoInput, Envelope{})
	if !reflect.DeepEqual(s.Env.Macros, env.Macros) {
		t.Errorf("macros %q, want %q", s.Env.Macros, env.Macros)
	}
}

// passOn writes s unchanged, as a stage passes on a decided stream.
func passOn(s *Stream, w io.Writer) error {
	if err := s.WriteEnvelope(w); err != nil {
		return err
	}
	_, err := io.Copy(w, s.Message)
	return err
}

// An empty macro value is written as the name alone, which no reader can
// take for part of the name, and reads back empty.
func TestEmptyMacroValue(t *testing.T) {
	env := Envelope{Phase: Mail, Macros: []Macro{{"{mail_addr}", ""}, {"j", "mx.example"}}}
	var b bytes.Buffer
	if err := Write(&b, &env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Mf-Macro: {mail_addr}\n") {
		t.Errorf("written as %q", b.String())
	}
	got, err := ParseEnvelope(b.Bytes())
	if err != nil || len(got.Macros) != 2 || got.Macros[0] != (Macro{"{mail_addr}", ""}) {
		t.Errorf("read back %+v, %v", got.Macros, err)
	}
}
