package quota

import (
	"context"
	"strings"
	"testing"
	"time"

	"mf/lib/lists"
	"mf/lib/state"
	"mf/lib/verdict"
)

func TestParseRule(t *testing.T) {
	r, err := ParseRule(`per-sender  key=sender-domain+rcpt limit=30/1m,500/1d count=recipients window=fixed reply="451 4.7.1 Slow down, please"`)
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyName() != "sender-domain+rcpt" || r.Count != Recipients || r.Sliding || len(r.Limits) != 2 ||
		r.Limits[1] != (Limit{500, 24 * time.Hour}) || r.Action != verdict.Tempfail || r.Reply.Text != "Slow down, please" {
		t.Fatalf("parsed %+v", r)
	}
	r, err = ParseRule(`b key=client-net limit=100/1h action=block:abusers for=6h dry-run`)
	if err != nil || r.Block != "abusers" || r.For != 6*time.Hour || !r.DryRun || r.Action != verdict.Reject || r.Reply != verdict.DefaultReject {
		t.Fatalf("parsed %+v, %v", r, err)
	}
	r, err = ParseRule(`b key=client limit=1/1h action=block reply="451 4.7.1 Later"`)
	if err != nil || r.Action != verdict.Tempfail || r.Block != "block" {
		t.Fatalf("a block with a 4xx reply tempfails: %+v, %v", r, err)
	}
	for _, bad := range []string{
		``, `=x key=sender limit=1/1m`, `r key=sender`, `r limit=1/1m`, `r key=sender limit=1/1m key=client`,
		`r key=sender limit=1/0s`, `r key=sender limit=x/1m`, `r key=sender limit=1/500ms`, `r key=sender limit=1/1m count=kilos`,
		`r key=sender limit=1/1m window=tumbling`, `r key=sender limit=1/1m action=reject reply="451 4.7.1 x"`,
		`r key=sender limit=1/1m reserve=3`, `r key=sender limit=1/1m for=1h`, `r key=auth-user limit=1/1m action=block`,
		`r key=sender limit=1/1m action=block:bad/name`, "r key=sender limit=1/1m reply=\"451\x00\"", `r key=sender limit=1/1m junk`,
	} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func engine(t *testing.T, rules ...string) (*Engine, *time.Time) {
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &Engine{St: st, Now: func() time.Time { return clock }}
	for _, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Rules = append(e.Rules, r)
	}
	return e, &clock
}

func msg(id, from string, rcpts ...string) Msg {
	return Msg{Phase: "data", QueueID: id, Client: "192.0.2.7", Sender: from, Rcpts: rcpts, Size: 1000}
}

func TestSlidingWindow(t *testing.T) {
	e, clock := engine(t, `r key=sender limit=10/1m`)
	ctx := context.Background()
	for i := range 10 {
		if o, _ := e.Check(ctx, msg(strings.Repeat("x", i+1), "a@example.org", "b@example.com")); o.Verdict.Action.Final() {
			t.Fatalf("message %d refused", i+1)
		}
	}
	// 45s into the next minute a quarter of the last one still counts:
	// 10 * 0.25 = 2.5, so 7 more fit and the 8th does not.
	*clock = clock.Add(time.Minute + 45*time.Second)
	n := 0
	for ; n < 20; n++ {
		if o, _ := e.Check(ctx, msg("y"+strings.Repeat("y", n), "a@example.org", "b@example.com")); o.Verdict.Action.Final() {
			break
		}
	}
	if n != 7 {
		t.Fatalf("%d messages fit after 1m45s, want 7", n)
	}
}

func TestFixedWindowAndUndo(t *testing.T) {
	e, clock := engine(t, `a key=client limit=100/1h count=recipients`, `b key=sender limit=2/1m window=fixed`)
	ctx := context.Background()
	for i, want := range []verdict.Action{verdict.Continue, verdict.Continue, verdict.Tempfail, verdict.Tempfail} {
		o, err := e.Check(ctx, msg(string(rune('a'+i)), "s@example.org", "r1@example.com", "r2@example.com"))
		if err != nil || o.Verdict.Action != want {
			t.Fatalf("message %d: %v %v, want %v", i+1, o.Verdict, err, want)
		}
	}
	cs, _ := e.Show(ctx, "192.0.2.7")
	if len(cs) != 1 || cs[0].Count != 4 {
		t.Fatalf("refused messages were counted by the other rule: %+v", cs)
	}
	*clock = clock.Add(time.Minute)
	if o, _ := e.Check(ctx, msg("e", "s@example.org", "r@example.com")); o.Verdict.Action.Final() {
		t.Fatal("refused in the next fixed window")
	}
}

func TestRcptThenData(t *testing.T) {
	e, _ := engine(t, `r key=rcpt-domain limit=2/1h count=recipients`)
	ctx := context.Background()
	m := Msg{Phase: "rcpt", QueueID: "Q", Client: "192.0.2.7", Sender: "s@example.org"}
	for i, rc := range []string{"a@x.example", "b@x.example", "c@x.example", "d@y.example"} {
		m.Rcpts = []string{rc}
		o, err := e.Check(ctx, m)
		if want := i == 2; err != nil || o.Verdict.Action.Final() != want {
			t.Fatalf("rcpt %s: %v %v", rc, o.Verdict, err)
		}
	}
	d := msg("Q", "s@example.org", "a@x.example", "b@x.example", "d@y.example")
	for range 2 {
		if o, err := e.Check(ctx, d); err != nil || o.Verdict.Action.Final() {
			t.Fatalf("data after rcpt counted again: %v %v", o.Verdict, err)
		}
	}
}

func TestBlockAction(t *testing.T) {
	e, _ := engine(t, `r key=sender-domain+client limit=1/1h action=block:bad for=2h`)
	ctx := context.Background()
	e.Check(ctx, msg("1", "s@Example.ORG", "r@example.com"))
	o, err := e.Check(ctx, msg("2", "t@example.org", "r@example.com"))
	if err != nil || o.Verdict.Action != verdict.Reject || o.Blocked != "sender-domain @example.org" {
		t.Fatalf("%+v %v", o, err)
	}
	ds, _ := lists.Dynamic(ctx, e.St, "bad")
	if len(ds) != 1 || ds[0].Entry != "sender-domain @example.org" || ds[0].By != "mf-quota" || ds[0].Expires.IsZero() {
		t.Fatalf("dynamic list: %+v", ds)
	}
}

func TestReserveAndExempt(t *testing.T) {
	e, _ := engine(t, `all key=any limit=3/1m reserve=1`)
	e.Opt.ExemptSenders = []string{"@partner.example"}
	ctx := context.Background()
	got := ""
	for i, m := range []Msg{
		msg("1", "a@example.org", "r@x"), msg("2", "a@example.org", "r@x"), msg("3", "a@example.org", "r@x"),
		{Phase: "data", QueueID: "4", AuthUser: "alice", Client: "192.0.2.1", Rcpts: []string{"r@x"}},
		msg("5", "p@partner.example", "r@x"),
		{Phase: "data", QueueID: "6", AuthUser: "bob", Client: "192.0.2.1", Rcpts: []string{"r@x"}},
	} {
		o, err := e.Check(ctx, m)
		if err != nil {
			t.Fatal(i, err)
		}
		got += o.Verdict.Action.String()[:1]
	}
	// strangers get 2 of 3, alice the reserved one, the partner is not
	// counted, bob finds it full.
	if got != "cctcct" {
		t.Fatalf("verdicts %s, want cctcct", got)
	}
}

// A sender is the client's own text: blocked, it blocks that sender and
// nothing else, however much it reads like a list entry, and one that
// does not read like an entry at all is blocked too.
func TestBlockedSenderIsExact(t *testing.T) {
	for _, sender := range []string{"0.0.0.0/0", "::/0", "@gmail.com", ".gmail.com", `"a b"@example.org`, "a@[192.0.2.1]", strings.Repeat("x", 400) + "@example.org"} {
		e, _ := engine(t, `per-sender key=sender limit=1/1h action=block:block for=6h`)
		ctx := context.Background()
		m := msg("1", sender, "r@example.com")
		m.Client = "198.51.100.9"
		e.Check(ctx, m)
		m.QueueID = "2"
		o, err := e.Check(ctx, m)
		if err != nil || o.Verdict.Action != verdict.Reject || o.Blocked == "" {
			t.Fatalf("%q: second message %+v %v", sender, o, err)
		}
		ls, err := (&lists.Dynamics{}).Load(ctx, e.St, dynamicReply)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []lists.Query{
			{ClientAddr: "192.0.2.1", Sender: "alice@example.org"},
			{ClientAddr: "2001:db8::1", Sender: "bob@gmail.com"},
			{ClientAddr: "203.0.113.1", Sender: "carol@mail.gmail.com"},
			{ClientAddr: "198.51.100.9", Sender: "b@example.org"},
		} {
			if r := lists.Check(ls, &q); r.Final != nil {
				t.Errorf("%q blocked: %+v caught by %s (%s)", sender, q, r.Final, r.Final.Entry())
			}
		}
		q := lists.Query{ClientAddr: "192.0.2.1", Sender: strings.ToUpper(sender)}
		if r := lists.Check(ls, &q); r.Final == nil {
			t.Errorf("%q: not blocked itself", sender)
		}
	}
}

func TestBlockedClientAndNet(t *testing.T) {
	e, _ := engine(t, `c key=client limit=1/1h action=block:c`)
	ctx := context.Background()
	m := msg("1", "a@example.org", "r@example.com")
	m.Client = "::ffff:192.0.2.7"
	e.Check(ctx, m)
	m.QueueID = "2"
	if o, _ := e.Check(ctx, m); o.Blocked != "client-addr 192.0.2.7" {
		t.Fatalf("blocked %q", o.Blocked)
	}
	ls, _ := (&lists.Dynamics{}).Load(ctx, e.St, dynamicReply)
	for addr, want := range map[string]bool{"192.0.2.7": true, "192.0.2.8": false} {
		if r := lists.Check(ls, &lists.Query{ClientAddr: addr}); (r.Final != nil) != want {
			t.Errorf("%s: %+v", addr, r.Final)
		}
	}
	e, _ = engine(t, `n key=client-net+sender limit=1/1h action=block:n`)
	e.Check(ctx, m)
	m.QueueID = "3"
	if o, _ := e.Check(ctx, m); o.Blocked != "client-net 192.0.2.0/24" {
		t.Fatalf("blocked %q", o.Blocked)
	}
	ls, _ = (&lists.Dynamics{}).Load(ctx, e.St, dynamicReply)
	for addr, want := range map[string]bool{"192.0.2.200": true, "192.0.3.1": false} {
		if r := lists.Check(ls, &lists.Query{ClientAddr: addr}); (r.Final != nil) != want {
			t.Errorf("%s: %+v", addr, r.Final)
		}
	}
}

var dynamicReply = verdict.Reply{Code: 550, Status: "5.7.1", Text: "Access denied"}
