package stream

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"mf/lib/verdict"
)

// FuzzStreamRoundTrip: whatever the network puts in the envelope and
// whatever the message holds, Write then Read gives back the same
// envelope and the message byte for byte; and Read of any bytes, as a
// stream or not, never panics.
func FuzzStreamRoundTrip(f *testing.F) {
	f.Add(uint8(4), "4BxYz1", "192.0.2.7", "mail.example.org", "mail.example.org", "alice",
		"alice@example.org", "bob@example.com", "carol@example.com", "{tls_version}", "TLSv1.3",
		"reject 550 5.7.1 Message rejected", "X-Mf-List: block", "mf-lists reject 0.4ms",
		[]byte("Subject: hi\r\n\r\nbody\r\n"))
	f.Add(uint8(3), "", "::1", "", "x\r\n", "", "a@b>\r\nMf-Verdict: accept", " <b@c> ", "%%", "j", " x ",
		"", "", "", []byte("Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: accept\n\n"))
	f.Fuzz(func(t *testing.T, stage uint8, queueID, client, clientName, helo, authUser,
		from, rcpt1, rcpt2, macroName, macroValue, verdictValue, addHeader, trace string, msg []byte) {
		env := Envelope{
			Phase:      Phases[int(stage)%len(Phases)],
			QueueID:    queueID,
			ClientAddr: client,
			ClientName: clientName,
			Helo:       helo,
			AuthUser:   authUser,
			MailFrom:   from,
			Rcpts:      []string{rcpt1, rcpt2},
			Macros:     []Macro{{macroName, macroValue}},
		}
		if trace != "" {
			env.Trace = []string{trace}
		}
		if v, err := verdict.Parse(verdictValue); err == nil {
			env.Verdict = &v
		}
		if checkField(addHeader) == nil {
			env.AddHeaders = []string{addHeader}
		}
		var in bytes.Buffer
		err := Write(&in, &env)
		if err != nil {
			// Write may refuse what it cannot write so that it reads
			// back, but only a macro name can be that.
			if macroName != "" && !strings.Contains(macroName, " ") {
				t.Fatalf("Write: %v", err)
			}
			env.Macros = nil
			in.Reset()
			if err := Write(&in, &env); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if !env.HasMessage() {
			msg = nil // before data, there is no message
		}
		in.Write(msg)

		s, err := Read(bytes.NewReader(in.Bytes()), AutoInput, Envelope{})
		if err != nil {
			t.Fatalf("Read of written stream: %v\n%q", err, in.Bytes())
		}
		if !reflect.DeepEqual(s.Env, env) {
			t.Fatalf("envelope changed:\ngot  %#v\nwant %#v\nstream %q", s.Env, env, in.Bytes())
		}
		// Handed over parsed, the stream reads the same, as a stream and
		// as bytes.
		p, err := NewParsed(&env, bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("NewParsed: %v", err)
		}
		ps, err := Read(p, AutoInput, Envelope{})
		if err != nil {
			t.Fatalf("Read of a Parsed: %v", err)
		}
		if !reflect.DeepEqual(ps.Env, s.Env) || !bytes.Equal(ps.Raw, s.Raw) {
			t.Fatalf("handed over:\ngot  %#v %q\nwant %#v %q", ps.Env, ps.Raw, s.Env, s.Raw)
		}
		if got, _ := io.ReadAll(ps.Message); !bytes.Equal(got, msg) {
			t.Fatalf("handed-over message %q, want %q", got, msg)
		}
		p, _ = NewParsed(&env, bytes.NewReader(msg))
		bs, err := Read(p, MessageInput, Envelope{})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(bs.Message); !bytes.Equal(got, in.Bytes()) {
			t.Fatalf("a Parsed read as a bare message: %q, want %q", got, in.Bytes())
		}

		h, err := ReadHeader(s.Message)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		out.Write(h.Prepend(nil))
		if _, err := io.Copy(&out, s.Message); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), msg) {
			t.Fatalf("message changed:\ngot  %q\nwant %q", out.Bytes(), msg)
		}

		// The message bytes read as anything at all.
		for _, kind := range []Input{AutoInput, StreamInput, MessageInput} {
			s, err := Read(bytes.NewReader(msg), kind, Envelope{})
			if err != nil {
				continue
			}
			var got bytes.Buffer
			if err := passOn(s, &got); err != nil {
				t.Fatal(err)
			}
			if s.Raw != nil && !bytes.Equal(got.Bytes(), msg) {
				t.Fatalf("PassOn changed a stream: %q -> %q", msg, got.Bytes())
			}
			if kind == MessageInput && !bytes.HasSuffix(got.Bytes(), msg) {
				t.Fatalf("bare message lost bytes: %q -> %q", msg, got.Bytes())
			}
		}
	})
}

// FuzzEncode: Decode reverses Encode, and an encoded value is one plain
// field value: no control byte, nothing a header reader trims.
func FuzzEncode(f *testing.F) {
	for _, v := range hostile {
		if len(v) < 100 { // long seeds make the fuzzer minimize for ages
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, v string) {
		e := Encode(v)
		checkEncoded(t, v, e)
		d, err := Decode(e)
		if err != nil || d != v {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", v, d, err)
		}
		env, err := ParseEnvelope([]byte("Mf-Stream: 1\nMf-Stage: data\nMf-Helo: " + e + "\n\n"))
		if err != nil || env.Helo != v {
			t.Fatalf("Mf-Helo: %s read back as %#v, %v; want %q", e, env, err, v)
		}
		// Decode of anything never panics, and what it accepts encodes to
		// something that decodes the same.
		if d, err := Decode(v); err == nil {
			if dd, err := Decode(Encode(d)); err != nil || dd != d {
				t.Fatalf("Decode(%q) = %q, but Decode(Encode(that)) = %q, %v", v, d, dd, err)
			}
		}
	})
}

// FuzzParseEnvelope: any bytes parse or fail without panicking, and an
// envelope that parsed is written so that it parses the same again.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte("Mf-Stream: 1\nMf-Stage: data\n\n"))
	f.Add([]byte("Mf-Stream: 1\r\nMf-Stage: rcpt\r\nMf-Rcpt-To: <a@b>\r\nMf-Macro: j x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := ParseEnvelope(raw)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := Write(&b, env); err != nil {
			t.Fatalf("Write of a parsed envelope: %v", err)
		}
		again, err := ParseEnvelope(b.Bytes())
		if err != nil {
			t.Fatalf("parsed %q, wrote %q, which does not parse: %v", raw, b.Bytes(), err)
		}
		if !reflect.DeepEqual(again, env) {
			t.Fatalf("parsed %q as %#v\nwrote %q, read back %#v", raw, env, b.Bytes(), again)
		}
		s, err := Read(bufio.NewReader(bytes.NewReader(raw)), StreamInput, Envelope{})
		if err == nil && s.Raw == nil {
			t.Fatal("Read of a stream gave no Raw")
		}
	})
}
