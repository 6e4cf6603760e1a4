package lists

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mf/lib/state"
)

// FuzzParseEntry: any line is an entry or an error, never a panic; an
// entry is of one kind, and matches what it names.
func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{
		"192.0.2.7", "192.0.2.0/24", "2001:db8::/32", "::ffff:192.0.2.7", "fe80::1%eth0", "0.0.0.0/0", "::/0",
		"mail.example.org", ".example.org", "alice@example.org", "postmaster@", "@example.org", "@.example.org",
		"*.example.org", "192.0.2.1/24", "[192.0.2.1]", "<a@b>", "@", "a b", "bücher.example", "A@B@C.example",
		"x..y", "caf\xe9", "a/b@example.org", "1.2.3", "::ffff:1.2.3.0/120",
	} {
		f.Add(s)
	}
	def, _, err := parse("f.list", strings.NewReader("match: client-addr client-name helo sender rcpt header-from\naction: block\n"), 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseEntry(s)
		if err != nil {
			return
		}
		if e.prefix.IsValid() == (e.key != "") {
			t.Fatalf("%q: entry %+v is neither or both an address and a key", s, e)
		}
		if e.prefix.IsValid() {
			if e.prefix.Masked() != e.prefix || e.prefix.Addr().Is4In6() || e.prefix.Addr().Zone() != "" {
				t.Fatalf("%q: network %v not in canonical form", s, e.prefix)
			}
		} else if !strings.ContainsRune("hdalmn", rune(e.key[0])) || !utf8.ValidString(e.key) {
			t.Fatalf("%q: key %q", s, e.key)
		}
		// The entry, alone in a list of every target, matches a value it
		// names.
		e.line = 3
		l, err := openImage(compile(def, []entry{e}, source{}, time.Time{}), "f.list")
		if err != nil {
			t.Fatalf("%q: image: %v", s, err)
		}
		var q Query
		if e.prefix.IsValid() {
			q.ClientAddr = e.prefix.Addr().String()
		} else {
			text := e.key[1:]
			switch e.key[0] {
			case kindHost:
				q.Helo = asciiUpper(text) + "." // case folds ASCII; Unicode case is not DNS's
			case kindSubdomain:
				q.ClientName = "x." + text
			case kindAddress:
				q.Sender = text
			case kindLocal:
				q.Rcpts = []string{text + "@example.org"}
			case kindDomain:
				q.HeaderFrom = []string{"x@" + text}
			case kindSubdomainA:
				q.Sender = "x@y." + text + "."
			}
		}
		if h, ok := l.Match(&q); !ok || h.Line != 3 {
			t.Fatalf("entry %q (%+v) does not match %+v", s, e, q)
		}
	})
}

// FuzzOpenImage: a cache file is read back from disk, where anything can
// happen to it; no bytes make openImage or a lookup panic.
func FuzzOpenImage(f *testing.F) {
	for _, text := range []string{
		"match: client-addr\naction: block\n192.0.2.0/24\n192.0.2.7\n2001:db8::/32\n::/0\n",
		"match: sender rcpt\naction: tag\nheader: X-A\nalice@example.org\npostmaster@\n@example.org\n@.example.com\n",
		"match: client-name helo\naction: tempblock\nreply: 421 4.3.2 Busy\nmail.example.org\n.example.net\n",
		"match: header-from\naction: allow\n",
	} {
		def, entries, err := parse("seed.list", strings.NewReader(text), 0)
		if err != nil {
			f.Fatal(err)
		}
		img := compile(def, entries, source{1, 2, 3, 4, 5}, time.Unix(0, 6))
		f.Add(img)
		f.Add(img[:len(img)/2])
	}
	probes := []Query{
		{ClientAddr: "192.0.2.7", ClientName: "a.example.net", Helo: "mail.example.org", Sender: "alice@example.org",
			Rcpts: []string{"postmaster", "x@a.example.com"}, HeaderFrom: []string{"x@example.org"}},
		{ClientAddr: "::ffff:0.0.0.0"}, {ClientAddr: "255.255.255.255"}, {ClientAddr: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{ClientAddr: "::"}, {Sender: "\xff"}, {Helo: "."},
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		l, err := openImage(img, "fuzz.list")
		if err != nil {
			return
		}
		_ = l.Len()
		_ = l.Verdict()
		for i := range probes {
			l.Match(&probes[i])
		}
		Check([]*List{l, l}, &probes[0])
		Why([]*List{l}, &probes[0])
		for _, a := range []string{"0.0.0.0", "10.0.0.1", "2001:db8::1"} {
			l.lookupAddr(netip.MustParseAddr(a))
		}
		for _, k := range []string{"", "h", "hmail.example.org", "\xff\xff\xff"} {
			l.lookupKey(k)
		}
	})
}

// The seed corpus of FuzzOpenImage holds images of the example lists
// shipped in etc/lists, compiled by the code under test.
func TestExampleListsCompile(t *testing.T) {
	paths, err := filepath.Glob("../../etc/lists/*.list")
	if err != nil || len(paths) == 0 {
		t.Skipf("no example lists: %v", err)
	}
	for _, p := range paths {
		l, err := Open(p, Options{})
		if err != nil {
			t.Errorf("example list: %v", err)
			continue
		}
		if l.Len() == 0 {
			t.Errorf("%s: empty", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzParseNet: a network read is masked, in its own family's form, and
// reads back as itself.
func FuzzParseNet(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.1/8", "10.0.0.1", "::ffff:10.0.0.0/104", "2001:db8::/32", "fe80::1%eth0", "0.0.0.0/0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseNet(s)
		if err != nil {
			return
		}
		if p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("%q read as %s", s, p)
		}
		if q, err := ParseNet(p.String()); err != nil || q != p {
			t.Fatalf("%q: %s reads back as %s, %v", s, p, q, err)
		}
	})
}

// FuzzDynamicValue: whatever sender a client sends, put on a dynamic
// list it blocks that sender and no other client or sender.
func FuzzDynamicValue(f *testing.F) {
	for _, s := range []string{"0.0.0.0/0", "::/0", "@gmail.com", ".gmail.com", `"a b"@x`, "a@[192.0.2.1]", "probe@probe.example.", "@", "sha256:00"} {
		f.Add(s, uint8(ValueSender))
	}
	f.Add("@probe.example", uint8(ValueSenderDomain))
	f.Add("198.18.0.0/15", uint8(ValueClientNet))
	st := &memStore{m: map[string]state.Entry{}}
	f.Fuzz(func(t *testing.T, v string, k uint8) {
		kind := ValueKind(k % 4)
		clear(st.m)
		d, err := AddDynamicValue(context.Background(), st, "f", kind, v, time.Hour, "", "fuzz")
		if err != nil {
			return
		}
		ls, err := (&Dynamics{}).Load(context.Background(), st, dynamicReply)
		if err != nil || len(ls) != 1 {
			t.Fatalf("%q: %v %v", v, ls, err)
		}
		probe := Query{ClientAddr: "192.0.2.254", ClientName: "probe.example", Sender: "probe@probe.example"}
		want := false // whether the value is the probe's own
		switch kind {
		case ValueSender:
			want = d.Value == probe.Sender
		case ValueSenderDomain:
			want = d.Value == "@probe.example"
		case ValueClientAddr:
			want = d.Value == probe.ClientAddr
		case ValueClientNet:
			want = netip.MustParsePrefix(d.Value).Contains(netip.MustParseAddr(probe.ClientAddr))
		}
		if r := Check(ls, &probe); (r.Final != nil) != want {
			t.Fatalf("%s %q (entry %q): blocks the probe %v, want %v", kind, v, d.Entry, r.Final != nil, want)
		}
		if kind == ValueSender {
			if r := Check(ls, &Query{Sender: v}); r.Final == nil {
				t.Fatalf("sender %q (entry %q) not blocked itself", v, d.Entry)
			}
		}
	})
}

// memStore is the part of a state.Store a dynamic list uses, in memory,
// for fuzzing without files.
type memStore struct {
	state.Store
	m map[string]state.Entry
}

func (s *memStore) Set(_ context.Context, k string, v []byte, _ time.Duration) error {
	s.m[k] = state.Entry{Key: k, Value: v}
	return nil
}

func (s *memStore) Scan(_ context.Context, prefix string) ([]state.Entry, error) {
	var out []state.Entry
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b state.Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
