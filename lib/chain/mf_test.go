package chain_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mf/cmd/mf-accept/mfaccept"
	"mf/cmd/mf-lists/mflists"
	"mf/cmd/mf-quota/mfquota"
	"mf/cmd/mf-scan/mfscan"
	"mf/internal/baseline"
	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/logger"
	"mf/lib/resident"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// inProcess is a chain of the stage lines, each of which must run one of
// mf's commands in-process, with conf as their configuration.
func inProcess(t testing.TB, dir, conf string, lines ...string) *chain.Chain {
	t.Helper()
	r := &chain.Runner{
		Env:     []string{"PATH=/usr/bin:/bin", "MF_CONFIG=" + conf},
		TempDir: dir,
		Commands: map[string]chain.Command{"mf-lists": mflists.Run, "mf-quota": mfquota.Run,
			"mf-accept": mfaccept.Run, "mf-scan": mfscan.Run},
		Resident: resident.New(),
	}
	t.Cleanup(func() { r.Resident.Close() })
	ch := &chain.Chain{Runner: r}
	for _, l := range lines {
		st, err := chain.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		if !r.InProcess(st) {
			t.Fatalf("%s: not in-process", l)
		}
		ch.Stages = append(ch.Stages, st)
	}
	return ch
}

// TestMfCommandsConcurrent runs mf-lists and mf-quota in-process from many
// goroutines at once over one resident set (run it with -race): each
// verdict is the one its own envelope calls for, a list edited meanwhile
// counts from the next run, and the quota counts every run once.
func TestMfCommandsConcurrent(t *testing.T) {
	dir := t.TempDir()
	lists := filepath.Join(dir, "lists")
	os.Mkdir(lists, 0o755)
	block := filepath.Join(lists, "10-block.list")
	os.WriteFile(block, []byte("match: client-addr\naction: block\n192.0.2.0/24\n"), 0o644)
	conf := filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("state-dir %s/state\nlists.dir %s\nquota.rule per-client key=client limit=25/1h count=recipients\n", dir, lists)), 0o644)
	ch := inProcess(t, dir, conf, "lists rcpt mf-lists check", "quota rcpt mf-quota check")
	run := func(client string) verdict.Action {
		env := stream.Envelope{Phase: stream.Rcpt, ClientAddr: client, ClientName: "unknown", MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
		o := ch.Run(context.Background(), env, nil)
		defer o.Close()
		for _, res := range o.Results {
			if res.Err != nil {
				t.Errorf("%s for %s: %v: %s", res.Stage.Name, client, res.Err, res.Stderr)
			}
		}
		return o.Verdict.Action
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				if a := run("192.0.2.9"); a != verdict.Reject {
					t.Errorf("blocked client: %s", a)
				}
				if a := run(fmt.Sprintf("203.0.113.%d", g)); a != verdict.Continue {
					t.Errorf("client %d, run %d: %s", g, i, a)
				}
			}
		}()
	}
	wg.Wait()
	// Each of the 8 clients was counted 6 times of its 25; 20 more pass,
	// the 26th does not.
	for i := 0; i < 19; i++ {
		run("203.0.113.1")
	}
	if a := run("203.0.113.1"); a != verdict.Tempfail {
		t.Errorf("the 26th recipient of one client: %s, want tempfail", a)
	}
	// The list edited: the next run sees it.
	os.WriteFile(block, []byte("match: client-addr\naction: block\n198.51.100.0/24\n"), 0o644)
	if a := run("192.0.2.9"); a != verdict.Continue {
		t.Errorf("after the edit, the client no longer listed: %s", a)
	}
	if a := run("198.51.100.4"); a != verdict.Reject {
		t.Errorf("after the edit, the newly listed client: %s", a)
	}
	// A list file added to the directory counts from the next run, and
	// one removed no longer does.
	added := filepath.Join(lists, "20-more.list")
	os.WriteFile(added, []byte("match: client-addr\naction: block\n203.0.113.200\n"), 0o644)
	if a := run("203.0.113.200"); a != verdict.Reject {
		t.Errorf("a list file added: the client it lists: %s", a)
	}
	os.Remove(added)
	if a := run("203.0.113.200"); a != verdict.Continue {
		t.Errorf("the list file removed: the client it listed: %s", a)
	}
}

// TestMfAcceptScanConcurrent runs mf-accept at rcpt and mf-scan at data
// in-process from many goroutines at once (run it with -race): each
// verdict is the one its own envelope and message call for, and a rule
// file edited meanwhile counts from the next run.
func TestMfAcceptScanConcurrent(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	os.WriteFile(rules, []byte("reject body /forbidden words/\ntag header:Subject /viagra/i subject=\"[SPAM] \"\n"), 0o644)
	conf := filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("state-dir %s/state\naccept.check helo-bare-ip\nscan.rules %s\n", dir, rules)), 0o644)
	ch := inProcess(t, dir, conf, "accept rcpt mf-accept check", "scan data mf-scan check")
	run := func(phase stream.Phase, helo, body string) verdict.Action {
		env := stream.Envelope{Phase: phase, ClientAddr: "203.0.113.7", ClientName: "unknown", Helo: helo, MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
		var msg *spool.Message
		if phase == stream.Data {
			f, err := os.CreateTemp(dir, "msg")
			if err != nil {
				t.Error(err)
				return verdict.Continue
			}
			defer f.Close()
			f.WriteString("Subject: hello\nFrom: a@example.org\n\n" + body + "\n")
			msg = &spool.Message{File: f}
		}
		o := ch.Run(context.Background(), env, msg)
		defer o.Close()
		for _, res := range o.Results {
			if res.Err != nil {
				t.Errorf("%s: %v: %s", res.Stage.Name, res.Err, res.Stderr)
			}
		}
		return o.Verdict.Action
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				if a := run(stream.Rcpt, "192.0.2.1", ""); a != verdict.Reject {
					t.Errorf("bare IP HELO: %s", a)
				}
				if a := run(stream.Rcpt, "mail.example.org", ""); a != verdict.Continue {
					t.Errorf("HELO by name: %s", a)
				}
				if a := run(stream.Data, "mail.example.org", "some forbidden words here"); a != verdict.Reject {
					t.Errorf("body rule: %s", a)
				}
				if a := run(stream.Data, "mail.example.org", fmt.Sprintf("clean %d %d", g, i)); a != verdict.Continue {
					t.Errorf("clean body: %s", a)
				}
			}
		}()
	}
	wg.Wait() // The rules edited (the same size, so only the times tell): the next
	// run sees them.
	os.WriteFile(rules, []byte("reject body /forbidden wordz/\ntag header:Subject /viagra/i subject=\"[SPAM] \"\n"), 0o644)
	if a := run(stream.Data, "mail.example.org", "some forbidden words here"); a != verdict.Continue {
		t.Errorf("after the edit, the old body rule: %s", a)
	}
	if a := run(stream.Data, "mail.example.org", "some forbidden wordz here"); a != verdict.Reject {
		t.Errorf("after the edit, the new body rule: %s", a)
	}
}

// setup writes, in a new directory, a lists directory with the one list
// given, a rule file and an mf.conf naming both, then more; it returns
// the directory and the configuration's path.
func setup(t testing.TB, list, rules, more string) (dir, conf string) {
	dir = t.TempDir()
	os.Mkdir(filepath.Join(dir, "lists"), 0o755)
	os.WriteFile(filepath.Join(dir, "lists", "10-block.list"), []byte(list), 0o644)
	os.WriteFile(filepath.Join(dir, "rules"), []byte(rules), 0o644)
	conf = filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("state-dir %[1]s/state\nlists.dir %[1]s/lists\nscan.rules %[1]s/rules\n%s", dir, more)), 0o644)
	return dir, conf
}

// TestMfMessageHandedBack: mf's own stages at data inside the bridge
// hand back a message they pass on unchanged (mf-lists, mf-accept: the
// chain goes on with the one it was given, no copy written), and write
// out one they change (mf-scan, which always says what it found).
func TestMfMessageHandedBack(t *testing.T) {
	dir, conf := setup(t, "match: sender\naction: block\n@spam.example\n", "tag header:Subject /viagra/i subject=\"[SPAM] \"\n",
		"accept.check header-missing\n")
	pass := inProcess(t, dir, conf, "lists data mf-lists check", "accept data mf-accept check")
	all := inProcess(t, dir, conf, "lists data mf-lists check", "accept data mf-accept check", "scan data mf-scan check")
	for _, c := range []struct {
		ch            *chain.Chain
		subject, want string
	}{{pass, "viagra", ""}, {all, "viagra", "Subject: [SPAM] viagra\n"}, {all, "hello", "X-Mf-Scan: continue"}} {
		f, err := os.CreateTemp(dir, "msg")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString("From: a@example.org\nTo: b@example.com\nDate: Wed, 2 Dec 2026 20:00:00 +0000\nMessage-Id: <1@example.org>\nSubject: " + c.subject + "\n\nbody\n")
		msg := &spool.Message{File: f}
		env := stream.Envelope{Phase: stream.Data, ClientAddr: "192.0.2.1", ClientName: "unknown", Helo: "h.example.org", MailFrom: "a@example.org", Rcpts: []string{"b@example.com"}}
		o := c.ch.Run(context.Background(), env, msg)
		if o.Verdict.Action != verdict.Continue || len(o.Results) != len(c.ch.Stages) {
			t.Fatalf("subject %q: %s after %d stages", c.subject, o.Verdict, len(o.Results))
		}
		for _, res := range o.Results {
			if res.Err != nil {
				t.Errorf("%s: %v: %s", res.Stage.Name, res.Err, res.Stderr)
			}
		}
		if c.want == "" {
			if o.Message != msg {
				t.Errorf("%d stages, subject %q: passed on unchanged, but the chain has a copy", len(o.Results), c.subject)
			}
		} else {
			r, _ := o.Message.Reader()
			b, _ := io.ReadAll(r)
			if o.Message == msg || !strings.Contains(string(b), c.want) {
				t.Errorf("%d stages, subject %q: message %q, want %q in a copy", len(o.Results), c.subject, b, c.want)
			}
		}
		o.Close()
	}
}

// BenchmarkOwnChain is one message through t/bench-postfix's chain of
// mf's own stages run in-process (mf-lists at rcpt and data, mf-quota at
// rcpt, mf-accept at rcpt and data, mf-scan at data): the bridge's share
// of that benchmark without Postfix around it. In turns with the chain
// alone, the same message goes through a bridge session as a milter
// feeds one (header fields, a body chunk with CRLF, end of message), and
// x-chain is the session's time over the chain's: what the bridge adds
// around the stages, spooling the message and comparing what comes back.
func BenchmarkOwnChain(b *testing.B) {
	dir, conf := setup(b, "match: client-addr sender rcpt\naction: block\n192.0.2.0/24\n@spam.example\n",
		"reject filename *.exe\nreject zip-name /\\.(exe|scr|js)$/i\ntag header:Subject /viagra/i subject=\"[SPAM] \"\n",
		`quota.rule per-client key=client limit=1000000000/1h count=recipients
accept.check helo-syntax
accept.check helo-bare-ip
accept.check max-rcpts
accept.check header-missing
`)
	ch := inProcess(b, dir, conf, "lists rcpt,data mf-lists check", "quota rcpt mf-quota check",
		"accept rcpt,data mf-accept check", "scan data mf-scan check")
	// Until then each run reads the files just written again (resident.Settle).
	time.Sleep(resident.Settle)
	header := []stream.Field{{Name: "Received", Value: "from client.example.org"}, {Name: "From", Value: "bench@example.org"},
		{Name: "To", Value: "user@example.test"}, {Name: "Subject", Value: "bench"},
		{Name: "Date", Value: "Wed, 2 Dec 2026 20:00:00 +0000"}, {Name: "Message-Id", Value: "<1@example.org>"}}
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 26)
	var msg strings.Builder
	for _, f := range header {
		msg.WriteString(f.Name + ": " + f.Value + "\n")
	}
	msg.WriteString("\n" + strings.ReplaceAll(body, "\r\n", "\n"))
	f, err := os.CreateTemp(dir, "msg")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.WriteString(msg.String())
	ctx := context.Background()
	alone := func() time.Duration {
		t0 := time.Now()
		env := stream.Envelope{Phase: stream.Rcpt, ClientAddr: "127.0.0.1", ClientName: "localhost", Helo: "client.example.org",
			MailFrom: "bench@example.org", Rcpts: []string{"user@example.test"}}
		o := ch.Run(ctx, env, nil)
		if o.Verdict.Action != verdict.Continue {
			b.Fatalf("rcpt: %s %v", o.Verdict.Action, o.Results[len(o.Results)-1].Err)
		}
		env = o.Env
		env.Phase = stream.Data
		o.Close()
		o = ch.Run(ctx, env, &spool.Message{File: f})
		if o.Verdict.Action != verdict.Continue {
			b.Fatalf("data: %s %v %s", o.Verdict.Action, o.Results[len(o.Results)-1].Err, o.Results[len(o.Results)-1].Stderr)
		}
		o.Close()
		return time.Since(t0)
	}
	cfg := &bridge.Config{SpoolDir: dir, Log: logger.New("mf-bridge", io.Discard), Chain: ch}
	session := func() time.Duration {
		t0 := time.Now()
		s := bridge.NewSession(cfg)
		defer s.Close()
		s.Connect(ctx, "localhost", "127.0.0.1", nil)
		s.Helo(ctx, "client.example.org", nil)
		s.Mail(ctx, "bench@example.org", nil)
		if r := s.Rcpt(ctx, "user@example.test", nil); r.Verdict.Action != verdict.Continue {
			b.Fatalf("session rcpt: %s", r.Verdict.Action)
		}
		for _, f := range header {
			s.Header(f.Name, f.Value)
		}
		s.EOH()
		s.Body([]byte(body))
		r, err := s.EOM(ctx, nil)
		if err != nil || r.Verdict.Action != verdict.Continue || r.Body != nil {
			b.Fatalf("session data: %v, %s, body changed %v", err, r.Verdict.Action, r.Body != nil)
		}
		r.Close()
		return time.Since(t0)
	}
	baseline.Turns(b, "ms/message", alone, "ms/session", session, "x-chain")
}
