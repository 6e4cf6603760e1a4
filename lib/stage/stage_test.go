package stage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"mf/lib/stream"
	"mf/lib/verdict"
)

const msg = "Subject: hi\nFrom: a@example.org\n\nbody\n"

func noenv(string) string { return "" }

func runWith(t *testing.T, f Flags, in string, d Decide) (int, string, error) {
	t.Helper()
	var out bytes.Buffer
	code, err := Run(context.Background(), "mf-test", &f, strings.NewReader(in), &out, noenv, d)
	return code, out.String(), err
}

func reject(context.Context, *Message) (*Decision, error) {
	return &Decision{Verdict: verdict.New(verdict.Reject, verdict.DefaultReject), Trace: "rule=x", AddHeaders: []string{"X-Why: x"}}, nil
}

func TestRunStream(t *testing.T) {
	code, out, err := runWith(t, Flags{Output: "stream"}, msg, reject)
	if err != nil || code != 100 {
		t.Fatalf("exit %d, %v", code, err)
	}
	for _, want := range []string{"Mf-Verdict: reject 550 5.7.1 Message rejected\n", "Mf-Trace: mf-test reject rule=x ", "Mf-Add-Header: X-Why: x\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n\n"+msg) {
		t.Errorf("message not passed whole: %q", out)
	}
}

// A stream decided upstream is passed on as it came, and decide is not
// asked.
func TestRunDecidedUpstream(t *testing.T) {
	in := "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: tempfail 451 4.7.1 Later\n\n" + msg
	code, out, err := runWith(t, Flags{Output: "stream", Flags: inputStream()}, in, func(context.Context, *Message) (*Decision, error) {
		t.Fatal("decide called")
		return nil, nil
	})
	if err != nil || code != 111 || out != in {
		t.Errorf("exit %d, %v, out %q", code, err, out)
	}
}

// --dry-run reports and refuses nothing.
func TestRunDryRun(t *testing.T) {
	var logged string
	f := Flags{Output: "stream", DryRun: true, Log: func(format string, a ...any) { logged = format }}
	code, out, err := runWith(t, f, msg, func(ctx context.Context, m *Message) (*Decision, error) {
		if !m.DryRun {
			t.Error("decide not told it is a dry run")
		}
		d, _ := reject(ctx, m)
		d.Reason = "because"
		return d, nil
	})
	if err != nil || code != 0 || strings.Contains(out, "Mf-Verdict") || !strings.Contains(out, "Mf-Trace: mf-test would-reject rule=x") || logged == "" {
		t.Errorf("exit %d, %v, out %q, logged %q", code, err, out, logged)
	}
}

// The whole message can be read several times, and what goes out after
// it was is the message as it came.
func TestRunOpenTwice(t *testing.T) {
	code, out, err := runWith(t, Flags{Output: "message"}, msg, func(ctx context.Context, m *Message) (*Decision, error) {
		for range 2 {
			r, err := m.Open()
			if err != nil {
				return nil, err
			}
			b, _ := io.ReadAll(r)
			if string(b) != msg {
				t.Errorf("Open read %q", b)
			}
		}
		if n, _ := m.Size(); n != int64(len(msg)) {
			t.Errorf("size %d", n)
		}
		h, err := m.Header()
		if err != nil || h.Fields.Get("Subject") != "hi" {
			t.Errorf("header %v %v", h, err)
		}
		return &Decision{AddHeaders: []string{"X-Seen: 1"}}, nil
	})
	if err != nil || code != 0 || out != "X-Seen: 1\n"+msg {
		t.Errorf("exit %d, %v, out %q", code, err, out)
	}
}

// TestRunOpenFile: a message handed over as a file (stream.File, as
// inside mf-bridge) is read where it is, header first or not, and never
// copied; from a pipe it is spooled.
func TestRunOpenFile(t *testing.T) {
	env := stream.Envelope{Phase: stream.Data, MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
	for _, c := range []struct {
		name, input string
		stdin       func() io.Reader
		copied      bool
	}{
		{"stream handed over", "stream", func() io.Reader {
			p, err := stream.NewParsed(&env, io.NewSectionReader(strings.NewReader("xx"+msg), 2, int64(len(msg))))
			if err != nil {
				t.Fatal(err)
			}
			return p
		}, false},
		{"message as a file", "message", func() io.Reader { return io.NewSectionReader(strings.NewReader(msg), 0, int64(len(msg))) }, false},
		{"message from a pipe", "message", func() io.Reader { return io.MultiReader(strings.NewReader(msg)) }, true},
	} {
		for _, headerFirst := range []bool{false, true} {
			var out bytes.Buffer
			f := Flags{Output: "message"}
			f.Input = c.input
			_, err := Run(context.Background(), "mf-test", &f, c.stdin(), &out, noenv, func(ctx context.Context, m *Message) (*Decision, error) {
				if headerFirst {
					if h, err := m.Header(); err != nil || h.Fields.Get("Subject") != "hi" {
						t.Errorf("%s: header %v %v", c.name, h, err)
					}
				}
				for range 2 {
					r, err := m.Open()
					if err != nil {
						return nil, err
					}
					if b, _ := io.ReadAll(r); string(b) != msg {
						t.Errorf("%s, header first %v: Open read %q", c.name, headerFirst, b)
					}
				}
				if (m.own != nil) != c.copied {
					t.Errorf("%s, header first %v: copied %v", c.name, headerFirst, m.own != nil)
				}
				return &Decision{AddHeaders: []string{"X-Seen: 1"}}, nil
			})
			if err != nil || out.String() != "X-Seen: 1\n"+msg {
				t.Errorf("%s, header first %v: %v, out %q", c.name, headerFirst, err, out.String())
			}
		}
	}
}

// An error from decide is the caller's; nothing is written.
func TestRunDecideError(t *testing.T) {
	code, out, err := runWith(t, Flags{Output: "stream"}, msg, func(context.Context, *Message) (*Decision, error) {
		return nil, errors.New("store down")
	})
	if err == nil || out != "" {
		t.Errorf("exit %d, err %v, out %q", code, err, out)
	}
}

// Before data there is no message; a tag is carried in the envelope.
func TestRunEnvelopeOnly(t *testing.T) {
	in := "Mf-Stream: 1\nMf-Stage: rcpt\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n"
	code, out, err := runWith(t, Flags{Output: "stream", Flags: inputStream()}, in, func(ctx context.Context, m *Message) (*Decision, error) {
		if h, err := m.Header(); h != nil || err != nil {
			t.Errorf("a header before data: %v %v", h, err)
		}
		return &Decision{AddHeaders: []string{"X-Early: 1"}}, nil
	})
	if err != nil || code != 0 || !strings.Contains(out, "Mf-Add-Header: X-Early: 1\n") || !strings.HasSuffix(out, "\n\n") {
		t.Errorf("exit %d, %v, out %q", code, err, out)
	}
}

func inputStream() stream.Flags { return stream.Flags{Input: "stream"} }
