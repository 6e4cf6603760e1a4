package accept

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"mf/lib/dns"
	"mf/lib/dnsbl"
	"mf/lib/greylist"
	"mf/lib/state"
	"mf/lib/stream"
	"mf/lib/verdict"
)

func TestParseHelo(t *testing.T) {
	for s, want := range map[string]HeloKind{
		"mail.example.org": FQDN, "MAIL.Example.ORG.": FQDN, "localhost": Invalid, "[192.0.2.7]": Literal,
		"[IPv6:2001:db8::1]": Literal, "[2001:db8::1]": Invalid, "[IPv6:192.0.2.1]": Invalid, "192.0.2.7": BareIP,
		"2001:db8::1": BareIP, "192.0.2.300": Invalid, "a_b.example": Invalid, "-a.example": Invalid,
		"": Invalid, "example..org": Invalid, "[192.0.2.7": Invalid, "x." + strings.Repeat("a", 64) + ".org": Invalid,
	} {
		if got := ParseHelo(s); got.Kind != want {
			t.Errorf("%q: %v, want %v", s, got.Kind, want)
		}
	}
}

func TestParseRule(t *testing.T) {
	r, err := ParseRule(`spf-fail action=reject reply="550 5.7.23 SPF says no" dry-run`)
	if err != nil || r.Action != Reject || r.Reply.Status != "5.7.23" || !r.DryRun {
		t.Fatalf("%+v %v", r, err)
	}
	if r, _ := ParseRule("fcrdns score=2.5"); r.Action != Score || r.Score != 2.5 {
		t.Fatalf("score: %+v", r)
	}
	for _, bad := range []string{"nonsense", "helo-own action=drop", `helo-own reply="451 x"`, "helo-own score=x",
		`greylist action=reject`, "helo-own dry-run dry-run", `helo-own action=tag reply="550 no"`, `helo-own reply="550`} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	l, err := ParseList(dnsbl.RHS, "dbl.test codes=127.0.1.2-127.0.1.99 on=sender score=3")
	if err != nil || l.Rule.Action != Score || len(l.On) != 1 || len(l.Zone.Codes) != 98 {
		t.Fatalf("%+v %v", l, err)
	}
	for _, bad := range []string{"", "not_a_zone", "bl.test codes=10.0.0.1", "bl.test on=sender", "wl.test reply=\"550 x\""} {
		kind := dnsbl.Block
		if strings.HasPrefix(bad, "wl") {
			kind = dnsbl.Allow
		}
		if _, err := ParseList(kind, bad); err == nil {
			t.Errorf("list %q accepted", bad)
		}
	}
}

// zone holds what the fake DNS answers: a listed client 192.0.2.7 with a
// generic name that does not resolve back, a clean client 192.0.2.10,
// SPF for example.org and the DNS lists' test entries.
func zone() *dns.Fake {
	f := dns.NewFake(
		"7.2.0.192.in-addr.arpa. PTR dyn-192-0-2-7.isp.test.",
		"10.2.0.192.in-addr.arpa. PTR mail.example.org.",
		"mail.example.org. A 192.0.2.10",
		`example.org. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`soft.example. TXT "v=spf1 ip4:192.0.2.10 ~all"`,
		"2.0.0.127.bl.test. A 127.0.0.2", "7.2.0.192.bl.test. A 127.0.0.2",
		"2.0.0.127.wl.test. A 127.0.10.2", "10.2.0.192.wl.test. A 127.0.10.2",
		"test.rhs.test. A 127.0.0.2", "spam.example.rhs.test. A 127.0.0.2",
	)
	f.Slow["20.2.0.192.in-addr.arpa."] = true
	return f
}

func policy(t *testing.T, f dns.Resolver, rules ...string) *Policy {
	p := &Policy{R: dns.NewCache(f), Timeout: 300 * time.Millisecond, DNSError: Tempfail, Rules: map[string]*Rule{},
		OwnNames: []string{"mx.example.test"}, OwnAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		OwnDomains: []string{"example.test"}, Hostname: "mx.example.test", AuthServID: "mx.example.test"}
	for _, g := range DefaultGeneric {
		p.Generic = append(p.Generic, regexp.MustCompile(g))
	}
	for _, s := range rules {
		var err error
		switch {
		case strings.HasPrefix(s, "dnsbl "):
			var l *List
			l, err = ParseList(dnsbl.Block, s[6:])
			p.Lists = append(p.Lists, l)
		case strings.HasPrefix(s, "dnswl "):
			var l *List
			l, err = ParseList(dnsbl.Allow, s[6:])
			p.Lists = append(p.Lists, l)
		case strings.HasPrefix(s, "rhsbl "):
			var l *List
			l, err = ParseList(dnsbl.RHS, s[6:])
			p.Lists = append(p.Lists, l)
		default:
			var r *Rule
			r, err = ParseRule(s)
			if err == nil {
				p.Rules[r.Name] = r
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return p
}

func txn(client, helo, sender string, rcpts ...string) *Txn {
	a, _ := netip.ParseAddr(client)
	return &Txn{Phase: stream.Rcpt, Client: a, Helo: helo, Sender: sender, Rcpts: rcpts}
}

func eval(t *testing.T, p *Policy, tx *Txn) *Outcome {
	t.Helper()
	o, err := p.Evaluate(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func hits(o *Outcome) string {
	var n []string
	for _, h := range o.Hits {
		n = append(n, h.Rule.Name)
	}
	return strings.Join(n, ",")
}

func TestChecks(t *testing.T) {
	all := []string{"helo-syntax", "helo-bare-ip", "helo-own", "helo-literal", "rdns-missing action=tag",
		"fcrdns score=2", "rdns-generic score=1", "dnsbl bl.test", "rhsbl rhs.test action=tag", "dnswl wl.test",
		"spf-fail", "spf-softfail"}
	for _, c := range []struct {
		name               string
		client, helo, from string
		want               verdict.Action
		hits               string
	}{
		{"listed, generic and unconfirmed", "192.0.2.7", "dyn.isp.test", "bob@spam.example", verdict.Reject, "fcrdns,rdns-generic,dnsbl:bl.test,rhsbl:rhs.test"},
		{"clean, whitelisted", "192.0.2.10", "[192.0.2.99]", "bob@example.org", verdict.Continue, ""},
		{"no ptr, bare ip helo", "192.0.2.11", "192.0.2.11", "bob@example.net", verdict.Reject, "rdns-missing,helo-bare-ip"},
		{"our own name", "192.0.2.11", "mx.example.test", "", verdict.Reject, "rdns-missing,helo-own"},
		{"literal not the client", "192.0.2.11", "[192.0.2.12]", "", verdict.Reject, "rdns-missing,helo-literal"},
		{"bad syntax", "192.0.2.11", "localhost", "", verdict.Reject, "rdns-missing,helo-syntax"},
		{"spf fail", "192.0.2.11", "[192.0.2.11]", "bob@example.org", verdict.Reject, "rdns-missing,spf-fail"},
		{"spf softfail: tagged", "192.0.2.11", "[192.0.2.11]", "bob@soft.example", verdict.Continue, "rdns-missing,spf-softfail"},
		{"ptr lookup times out", "192.0.2.20", "[192.0.2.20]", "", verdict.Tempfail, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := eval(t, policy(t, zone(), all...), txn(c.client, c.helo, c.from, "alice@example.test"))
			if o.Verdict.Action != c.want || hits(o) != c.hits {
				t.Errorf("%v [%s], want %v [%s]; notes %v", o.Verdict.Action, hits(o), c.want, c.hits, o.Notes)
			}
		})
	}
	// The whitelisted client skipped the heuristics but not SPF.
	o := eval(t, policy(t, zone(), all...), txn("192.0.2.10", "localhost", "bob@example.org", "a@example.test"))
	if o.Exempt != "dnswl:wl.test" || o.SPF != "pass" || o.AddHeaders[0] != `Received-SPF: pass client-ip=192.0.2.10; envelope-from="bob@example.org"; receiver=mx.example.test; identity=mailfrom` {
		t.Errorf("dnswl: %+v", o)
	}
	// A score over the threshold rejects; tags become X-Mf-Accept.
	p := policy(t, zone(), "fcrdns score=2", "rdns-generic score=1", "helo-syntax action=tag")
	o = eval(t, p, txn("192.0.2.7", "x", "", "a@example.test"))
	if o.Verdict.Action != verdict.Continue || o.Score != 3 || !has(o.AddHeaders, "X-Mf-Accept: fcrdns(2) helo-syntax rdns-generic(1); score=3") {
		t.Errorf("tags: %+v", o)
	}
	p.RejectScore = 3
	if o = eval(t, p, txn("192.0.2.7", "x", "", "a@example.test")); o.Verdict.Action != verdict.Reject {
		t.Errorf("reject-score: %+v", o)
	}
	// Dry run: recorded, no effect.
	p = policy(t, zone(), "dnsbl bl.test dry-run", "helo-syntax dry-run")
	o = eval(t, p, txn("192.0.2.7", "x", "", "a@example.test"))
	if o.Verdict.Action != verdict.Continue || strings.Join(o.Would(), " ") != "reject:helo-syntax reject:dnsbl:bl.test" && strings.Join(o.Would(), " ") != "reject:dnsbl:bl.test reject:helo-syntax" {
		t.Errorf("dry-run: %v %v", o.Verdict, o.Would())
	}
	// Authenticated: nothing heuristic runs, not even a lookup.
	f := zone()
	p = policy(t, f, all...)
	tx := txn("192.0.2.7", "x", "bob@example.org", "a@example.test")
	tx.AuthUser = "bob"
	if o = eval(t, p, tx); o.Verdict.Action != verdict.Continue || f.Queries != 0 {
		t.Errorf("auth: %v %d queries", o.Verdict, f.Queries)
	}
	// Timeouts answer as dns-error says.
	p = policy(t, zone(), "rdns-missing")
	p.DNSError = Tag
	if o = eval(t, p, txn("192.0.2.20", "", "")); o.Verdict.Action != verdict.Continue || len(o.Notes) == 0 {
		t.Errorf("dns-error tag: %+v", o)
	}
}

func TestLimitsAndHeaders(t *testing.T) {
	p := policy(t, zone(), "max-rcpts", "null-sender-rcpts", "max-size", "header-missing", "header-duplicate", "header-from-sender", "header-own-domain")
	p.MaxRcpts, p.MaxSize = 2, 1000
	if o := eval(t, p, txn("192.0.2.10", "", "bob@example.org", "a@x.test", "b@x.test", "c@x.test")); hits(o) != "max-rcpts" || o.Verdict.Action != verdict.Tempfail {
		t.Errorf("max-rcpts: %s %v", hits(o), o.Verdict)
	}
	if o := eval(t, p, txn("192.0.2.10", "", "", "a@x.test", "b@x.test")); hits(o) != "null-sender-rcpts" {
		t.Errorf("null sender: %s", hits(o))
	}
	tx := txn("192.0.2.10", "", "bob@example.org", "a@x.test")
	tx.Size = 2000
	if o := eval(t, p, tx); hits(o) != "max-size" {
		t.Errorf("size: %s", hits(o))
	}
	for hdr, want := range map[string]string{
		"From: a@example.org\nDate: x\nMessage-ID: <1@x>\n\n":                                       "",
		"From: a@example.org\n\n":                                                                   "header-missing",
		"From: a@example.org\nFrom: b@example.org\nDate: x\nMessage-ID: <1@x>\n\n":                  "header-duplicate",
		"From: a@example.org, b@example.org\nDate: x\nMessage-ID: <1@x>\n\n":                        "header-from-sender",
		"From: boss@example.test\nDate: x\nMessage-ID: <1@x>\n\n":                                   "header-own-domain",
		"From: a@example.org, b@example.org\nSender: a@example.org\nDate: x\nMessage-ID: <1@x>\n\n": "",
	} {
		tx := txn("192.0.2.10", "", "bob@example.org", "a@x.test")
		tx.Phase = stream.Data
		h, err := stream.ReadHeader(bufioReader(hdr))
		if err != nil {
			t.Fatal(err)
		}
		tx.Header = h
		if o := eval(t, p, tx); hits(o) != want {
			t.Errorf("%q: %q, want %q", hdr, hits(o), want)
		}
	}
}

func TestGreylist(t *testing.T) {
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	p := policy(t, zone(), "greylist", "dnswl wl.test")
	p.Greylist = &greylist.List{St: st, Opt: greylist.Defaults, Now: func() time.Time { return now }}
	p.GreylistSkipSPF = true
	o := eval(t, p, txn("192.0.2.11", "", "bob@example.net", "a@x.test"))
	if o.Verdict.Action != verdict.Tempfail || o.Verdict.Reply != GreylistReply {
		t.Fatalf("first: %v", o.Verdict)
	}
	now = now.Add(6 * time.Minute)
	if o = eval(t, p, txn("192.0.2.11", "", "bob@example.net", "a@x.test")); o.Verdict.Action != verdict.Continue {
		t.Fatalf("retry: %v", o.Verdict)
	}
	// DNSWL and SPF pass bypass it.
	if o = eval(t, p, txn("192.0.2.10", "", "bob@example.net", "a@x.test")); o.Verdict.Action != verdict.Continue {
		t.Errorf("dnswl: %v", o.Verdict)
	}
	p.Lists = nil
	if o = eval(t, p, txn("192.0.2.10", "", "bob@example.org", "a@x.test")); o.Verdict.Action != verdict.Continue || o.SPF != "pass" {
		t.Errorf("spf pass: %v %s", o.Verdict, o.SPF)
	}
	// A dry-run greylist writes no tuple.
	tx := txn("192.0.2.50", "", "x@example.net", "a@x.test")
	tx.DryRun = true
	eval(t, p, tx)
	if es, _ := p.Greylist.Show(context.Background(), "192.0.2.0/24 x@"); len(es) != 0 {
		t.Errorf("dry run wrote %v", es)
	}
}

func bufioReader(s string) *bufioR { return newBufio(strings.NewReader(s)) }

func FuzzParseHelo(f *testing.F) {
	for _, s := range []string{"mail.example.org", "[192.0.2.1]", "[IPv6:::1]", "1.2.3.4", "x", "a-.b", "[IPv6:fe80::1%eth0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := ParseHelo(s)
		switch h.Kind {
		case FQDN:
			if ParseHelo(h.Name).Kind != FQDN || strings.ContainsAny(h.Name, " \r\n;\"") {
				t.Fatalf("%q -> %q", s, h.Name)
			}
		case Literal, BareIP:
			if !h.Addr.IsValid() {
				t.Fatalf("%q: no address", s)
			}
		}
	})
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{`spf-fail reply="550 5.7.1 no"`, "fcrdns score=2 dry-run", `greylist action=tag`, `x "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseRule(s)
		if l, err := ParseList(dnsbl.RHS, s); err == nil && l.Zone.Name == "" {
			t.Fatalf("%q: list without zone", s)
		}
	})
}

// FuzzHeaderAddress feeds strangers' header blocks and envelope values to
// the header checks, the address and SPF field parsers.
func FuzzHeaderAddress(f *testing.F) {
	f.Add("From: a@example.org, b@example.org\nDate: x\n\n", "bob@example.org", "Received-SPF: pass client-ip=1.2.3.4")
	f.Add("From: =?utf-8?q?x?= <a@[1.2.3.4]>\n\n", "a@b@c", "Received-SPF: ")
	f.Fuzz(func(t *testing.T, hdr, addr, field string) {
		if d := domainOf(addr); d != "" && ParseHelo(d).Kind != FQDN {
			t.Fatalf("%q: domain %q", addr, d)
		}
		carriedSPF([]string{field})
		if s := receivedSPF("pass", "192.0.2.1", addr, addr, "mx"); strings.ContainsAny(s, "\r\n") {
			t.Fatalf("field breaks: %q", s)
		}
		h, err := stream.ReadHeader(bufioReader(hdr))
		if err != nil {
			return
		}
		p := &Policy{Rules: map[string]*Rule{}, OwnDomains: []string{"example.test"}}
		for _, n := range []string{"header-missing", "header-duplicate", "header-from-sender", "header-own-domain"} {
			p.Rules[n] = &Rule{Name: n}
		}
		r := &run{p: p, t: &Txn{Phase: stream.Data, Header: h, Sender: addr}, o: &Outcome{}}
		r.headers()
		r.t.Open = func() (io.Reader, error) { return bytes.NewReader([]byte(hdr)), nil }
		r.evalDMARC(func(string) ([]string, error) { return nil, dns.NotFound("x") }, nil, domainOf(addr))
	})
}

func TestDataAfterEarlierRun(t *testing.T) {
	f := zone()
	p := policy(t, f, "header-missing", "spf-softfail action=tag", "dnsbl bl.test", "rdns-missing")
	h, _ := stream.ReadHeader(bufioReader("From: a@soft.example\n\n"))
	tx := txn("192.0.2.7", "x", "bob@soft.example", "a@x.test")
	tx.Phase, tx.Header, tx.EarlierRun = stream.Data, h, true
	tx.Pending = []string{"Received-SPF: softfail client-ip=192.0.2.7;", "X-Mf-Accept: spf-softfail"}
	o := eval(t, p, tx)
	// The listed client was judged at RCPT; at data only the header counts,
	// and the SPF tag is not put on again.
	if hits(o) != "header-missing" || f.Queries != 0 {
		t.Errorf("data after rcpt: [%s] %d queries", hits(o), f.Queries)
	}
	tx.EarlierExempt = "dnswl:wl.test"
	if o = eval(t, p, tx); o.Verdict.Action != verdict.Continue || o.Exempt != "dnswl:wl.test" {
		t.Errorf("dnswl carried: %v %s", o.Verdict, o.Exempt)
	}
}

func TestCarriedAtNextRcpt(t *testing.T) {
	f := zone()
	p := policy(t, f, "fcrdns score=2", "rdns-generic score=1", "dnsbl bl.test action=tag", "max-rcpts")
	p.MaxRcpts = 2
	first := eval(t, p, txn("192.0.2.7", "x", "", "a@x.test"))
	n := f.Queries
	if hits(first) != "fcrdns,rdns-generic,dnsbl:bl.test" || n == 0 {
		t.Fatalf("first: [%s] %d queries", hits(first), n)
	}
	tx := txn("192.0.2.7", "x", "", "a@x.test", "b@x.test", "c@x.test")
	tx.EarlierRun, tx.EarlierPhase, tx.EarlierHits = true, stream.Rcpt, []string{"fcrdns", "rdns-generic", "dnsbl:bl.test", "max-rcpts", "gone"}
	o := eval(t, p, tx)
	if f.Queries != n || hits(o) != "fcrdns,rdns-generic,dnsbl:bl.test,max-rcpts" || o.Score != 3 {
		t.Errorf("next rcpt: [%s] score %g, %d more queries", hits(o), o.Score, f.Queries-n)
	}
	// After a run at connect the sender's checks have not run yet.
	tx.EarlierPhase = stream.Connect
	p.R = dns.NewCache(f)
	if eval(t, p, tx); f.Queries == n {
		t.Error("after connect: nothing asked")
	}
}

// FuzzEvaluate runs every check on a stranger's envelope and header
// against the fake zone: no panic, and a verdict that is one of ours.
func FuzzEvaluate(f *testing.F) {
	f.Add("192.0.2.7", "mail.example.org", "bob@example.org", "a@x.test", "From: a@example.org\nDate: x\n\n")
	f.Add("2001:db8::1", "[IPv6:2001:db8::1]", "", "<>", "From: a@example.test, b@x\n\n")
	f.Add("192.0.2.10", "192.0.2.10", "x@soft.example", "a@x.test", "From: =?utf-8?b?eA==?= <x@soft.example>\nFrom: y\n\n")
	all := []string{"helo-syntax", "helo-bare-ip", "helo-own", "helo-literal", "rdns-missing", "fcrdns", "rdns-generic",
		"dnsbl bl.test", "rhsbl rhs.test", "dnswl wl.test", "spf-fail", "spf-softfail", "spf-permerror", "max-rcpts",
		"null-sender-rcpts", "header-missing", "header-duplicate", "header-from-sender", "header-own-domain", "dmarc-reject"}
	f.Fuzz(func(t *testing.T, client, helo, sender, rcpt, hdr string) {
		p := policy(t, zone(), all...)
		p.DMARC, p.MaxRcpts, p.Timeout = true, 1, 50*time.Millisecond
		a, _ := netip.ParseAddr(client)
		h, err := stream.ReadHeader(bufioReader(hdr))
		if err != nil {
			return
		}
		tx := &Txn{Phase: stream.Data, Client: a, Helo: helo, Sender: sender, Rcpts: []string{rcpt, rcpt}, Header: h,
			Open: func() (io.Reader, error) { return strings.NewReader(hdr), nil }}
		o, err := p.Evaluate(context.Background(), tx)
		if err != nil {
			return
		}
		switch o.Verdict.Action {
		case verdict.Continue, verdict.Reject, verdict.Tempfail, verdict.Quarantine:
		default:
			t.Fatalf("verdict %v", o.Verdict)
		}
		for _, f := range o.AddHeaders {
			if strings.ContainsAny(strings.ReplaceAll(f, "\n\t", ""), "\r\n") {
				t.Fatalf("field breaks the header: %q", f)
			}
		}
	})
}
