package bridge

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"mf/lib/chain"
	"mf/lib/decision"
	"mf/lib/logger"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// step is one phase of a script: what the MTA says and the action the
// session must answer.
type step struct {
	phase string // connect, helo, mail, rcpt, data, rset
	arg   string
	want  verdict.Action
}

func TestSessionScripts(t *testing.T) {
	// A stage that refuses recipients named no*, discards for rcpt
	// "trash", accepts for "vip", at the phases it is configured for.
	const rcptStage = `case "$RECIPIENT" in no*) exit 100;; trash*) exit 99;; vip*) exit 99;; esac; exit 0`
	for _, c := range []struct {
		name    string
		stages  []string
		script  []step
		records []string // phase:action of each decision record, in order
	}{
		{
			name:   "connect accept",
			stages: []string{`ok connect output=exit -- sh -c "exit 99"`, `never data output=exit -- sh -c "exit 100"`},
			script: []step{{"connect", "192.0.2.1", verdict.Accept}, {"helo", "h", verdict.Continue},
				{"mail", "a@example.org", verdict.Continue}, {"rcpt", "b@example.com", verdict.Continue}, {"data", "", verdict.Accept}},
			records: []string{"connect:accept", "data:accept"},
		},
		{
			name:   "discard at rcpt",
			stages: []string{`d rcpt output=exit 99=discard -- sh -c '` + rcptStage + `'`},
			script: []step{{"connect", "192.0.2.1", verdict.Continue}, {"mail", "a@example.org", verdict.Continue},
				{"rcpt", "trash@example.com", verdict.Continue}, {"rcpt", "b@example.com", verdict.Continue}, {"data", "", verdict.Discard}},
			records: []string{"data:discard"},
		},
		{
			name:   "reject one recipient of three",
			stages: []string{`r rcpt output=exit -- sh -c '` + rcptStage + `'`},
			script: []step{{"connect", "192.0.2.1", verdict.Continue}, {"mail", "a@example.org", verdict.Continue},
				{"rcpt", "b@example.com", verdict.Continue}, {"rcpt", "nobody@example.com", verdict.Reject},
				{"rcpt", "c@example.com", verdict.Continue}, {"data", "", verdict.Accept}},
			records: []string{"rcpt:reject", "data:accept"},
		},
		{
			name:   "two messages on one connection",
			stages: []string{`r rcpt output=exit -- sh -c '` + rcptStage + `'`, `tag data input=message output=headers -- echo "X-Seen: 1"`},
			script: []step{{"connect", "192.0.2.1", verdict.Continue},
				{"mail", "a@example.org", verdict.Continue}, {"rcpt", "vip@example.com", verdict.Accept}, {"data", "", verdict.Accept},
				{"mail", "b@example.org", verdict.Continue}, {"rcpt", "c@example.com", verdict.Continue}, {"data", "", verdict.Accept}},
			records: []string{"rcpt:accept", "data:accept", "data:accept"},
		},
		{
			name:   "rset ends the transaction",
			stages: []string{`r rcpt output=exit -- sh -c '` + rcptStage + `'`},
			script: []step{{"connect", "192.0.2.1", verdict.Continue}, {"mail", "a@example.org", verdict.Continue},
				{"rcpt", "b@example.com", verdict.Continue}, {"rset", "", verdict.Continue},
				{"mail", "c@example.org", verdict.Continue}, {"rcpt", "d@example.com", verdict.Continue}, {"data", "", verdict.Accept}},
			records: []string{"abort:continue", "data:accept"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, recs := testConfig(t, c.stages...)
			s := NewSession(cfg)
			defer s.Close()
			ctx := context.Background()
			var inFlight int64
			for i, st := range c.script {
				var r *Reply
				switch st.phase {
				case "connect":
					r = s.Connect(ctx, "unknown", st.arg, nil)
				case "helo":
					r = s.Helo(ctx, st.arg, nil)
				case "mail":
					r = s.Mail(ctx, st.arg, map[string]string{"i": "Q" + st.arg[:1]})
				case "rcpt":
					r = s.Rcpt(ctx, st.arg, nil)
				case "rset":
					s.Abort()
					continue
				case "data":
					s.Header("Subject", "test")
					if err := s.Body([]byte("body\r\n")); err != nil {
						t.Fatal(err)
					}
					var err error
					if r, err = s.EOM(ctx, nil); err != nil {
						t.Fatal(err)
					}
					defer r.Close()
				}
				got := r.Verdict.Action
				if st.phase == "data" && got == verdict.Continue {
					got = verdict.Accept // the adapter tells the MTA to take it
				}
				if got != st.want {
					t.Errorf("step %d (%s %s): %s, want %s", i, st.phase, st.arg, got, st.want)
				}
			}
			if inFlight = cfg.InFlight.Load(); inFlight != 0 {
				t.Errorf("%d transactions left in flight", inFlight)
			}
			if got := recs(); strings.Join(got, " ") != strings.Join(c.records, " ") {
				t.Errorf("records %v, want %v", got, c.records)
			}
		})
	}
}

// Step decides a phase with no transaction, as the policy front-end does.
func TestStep(t *testing.T) {
	cfg, recs := testConfig(t, `r rcpt output=exit -- sh -c 'test "$RECIPIENT" = no@example.com && exit 100; exit 0'`)
	env := cfgEnv("rcpt", "no@example.com")
	if r := cfg.Step(context.Background(), env); r.Verdict.Action != verdict.Reject {
		t.Errorf("got %s", r.Verdict)
	}
	if r := cfg.Step(context.Background(), cfgEnv("rcpt", "yes@example.com")); r.Verdict.Action != verdict.Continue {
		t.Errorf("got %s", r.Verdict)
	}
	if got := recs(); len(got) != 1 || got[0] != "rcpt:reject" {
		t.Errorf("records %v", got)
	}
}

// WriteMessage gives the message as the chain left it, for front-ends
// that deliver it themselves.
func TestWriteMessage(t *testing.T) {
	cfg, _ := testConfig(t, `tag data input=message output=headers -- echo "X-Tag: yes"`,
		`up data input=message output=message -- sed s/body/BODY/`)
	s := NewSession(cfg)
	defer s.Close()
	ctx := context.Background()
	s.Connect(ctx, "unknown", "192.0.2.1", nil)
	s.Mail(ctx, "a@example.org", nil)
	s.Rcpt(ctx, "b@example.com", nil)
	s.Header("Subject", "x")
	s.Body([]byte("body\r\n"))
	r, err := s.EOM(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	if err := r.WriteMessage(&b); err != nil {
		t.Fatal(err)
	}
	if want := "Subject: x\nX-Tag: yes\n\nBODY\n"; b.String() != want || r.Sender != "a@example.org" || len(r.Rcpts) != 1 {
		t.Errorf("message %q (want %q), sender %q, rcpts %v", b.String(), want, r.Sender, r.Rcpts)
	}
}

func cfgEnv(phase, rcpt string) stream.Envelope {
	return stream.Envelope{Phase: stream.Phase(phase), ClientAddr: "192.0.2.1", MailFrom: "a@example.org", Rcpts: []string{rcpt}}
}

func testConfig(t *testing.T, lines ...string) (*Config, func() []string) {
	t.Helper()
	ch := &chain.Chain{Runner: &chain.Runner{Env: []string{"PATH=/usr/bin:/bin"}, TempDir: t.TempDir()}}
	for _, l := range lines {
		st, err := chain.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		ch.Stages = append(ch.Stages, st)
	}
	path := filepath.Join(t.TempDir(), "decisions")
	rec, err := OpenRecorder(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	cfg := &Config{Chain: ch, SpoolDir: t.TempDir(), Log: logger.New("mf-bridge", io.Discard), Records: rec, InFlight: new(atomic.Int64)}
	return cfg, func() []string {
		b, _ := os.ReadFile(path)
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var d decision.Record
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			out = append(out, d.Phase+":"+d.Action)
		}
		return out
	}
}
