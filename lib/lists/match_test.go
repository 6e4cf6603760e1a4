package lists

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const hostList = `match: client-name helo
action: block
mail.example.org          # 3
.example.net              # 4
Upper.Example.COM         # 5
mx-1_a.example.io         # 6
bücher.example           # 7
`

func TestHostEntries(t *testing.T) {
	l := compileList(t, hostList)
	for _, tt := range []struct {
		v    string
		line int // 0: no match
	}{
		{"mail.example.org", 3},
		{"MAIL.EXAMPLE.ORG", 3},
		{"mail.example.org.", 3}, // trailing dot ignored
		{"example.org", 0},
		{"smtp.mail.example.org", 0}, // an exact host is only that host
		{"mail.example.org.evil", 0},
		{"xmail.example.org", 0},
		{"example.net", 0}, // .example.net is below it, not the domain itself
		{"a.example.net", 4},
		{"a.b.c.example.net", 4},
		{"A.Example.Net.", 4},
		{"aexample.net", 0},
		{"upper.example.com", 5},
		{"mx-1_a.example.io", 6},
		{"bücher.example", 7},
		{"BÜCHER.example", 7},
		{"", 0},
		{".", 0},
		{"net", 0},
	} {
		for _, q := range []*Query{{ClientName: tt.v}, {Helo: tt.v}} {
			h, ok := l.Match(q)
			if ok != (tt.line != 0) || ok && h.Line != tt.line {
				t.Errorf("%+v: hit %v line %d, want line %d", *q, ok, h.Line, tt.line)
			}
			if ok && h.Value != tt.v {
				t.Errorf("%q: hit value %q", tt.v, h.Value)
			}
		}
	}
	// A host list is not matched against addresses or mail addresses.
	if _, ok := l.Match(&Query{Sender: "x@mail.example.org", ClientAddr: "192.0.2.1"}); ok {
		t.Error("host list matched a sender")
	}
}

const addressList = `match: sender rcpt header-from
action: block
alice@example.org         # 3
postmaster@               # 4
@example.net              # 5
@.example.com             # 6
Bob.Smith@Example.ORG     # 7
"quoted.local"@x.example # 8
/c=us/o=x/@x400.example  # 9
`

func TestAddressEntries(t *testing.T) {
	l := compileList(t, addressList)
	for _, tt := range []struct {
		v    string
		line int
	}{
		{"alice@example.org", 3},
		{"ALICE@EXAMPLE.ORG", 3},
		{"alice@example.org.", 3}, // trailing dot on the domain ignored
		{"alice@mail.example.org", 0},
		{"alice2@example.org", 0},
		{"xalice@example.org", 0},
		{"alice@example.orgx", 0},
		{"alice", 0},
		{"postmaster@anywhere.example", 4},
		{"Postmaster@example.org", 4},
		{"postmaster", 4}, // a recipient without a domain
		{"postmaster2@x.example", 0},
		{"anyone@example.net", 5},
		{"Anyone@EXAMPLE.NET.", 5},
		{"anyone@sub.example.net", 0}, // @example.net is that domain only
		{"anyone@example.com", 0},     // @.example.com is below it only
		{"anyone@sub.example.com", 6},
		{"anyone@a.b.example.com", 6},
		{"anyone@example.com.evil", 0},
		{"bob.smith@example.org", 7},
		{`"Quoted.Local"@X.example`, 8},
		{"@example.net", 5},
		{"", 0},
		{"@", 0},
		{"a@b@example.net", 5},
		{"/C=US/O=X/@x400.example", 9}, // a '/' in the local part, as X.400 gateways write
	} {
		for _, q := range []*Query{{Sender: tt.v}, {Rcpts: []string{tt.v}}, {HeaderFrom: []string{tt.v}}} {
			h, ok := l.Match(q)
			if ok != (tt.line != 0) || ok && h.Line != tt.line {
				t.Errorf("%q in %+v: hit %v line %d, want line %d", tt.v, *q, ok, h.Line, tt.line)
			}
		}
	}
	// Every recipient is tried; the hit names the one that matched.
	h, ok := l.Match(&Query{Rcpts: []string{"carol@example.org", "x@example.net"}})
	if !ok || h.Value != "x@example.net" || h.Target != Rcpt {
		t.Errorf("recipients: %+v %v", h, ok)
	}
	if _, ok := l.Match(&Query{ClientName: "example.net", Helo: "alice@example.org"}); ok {
		t.Error("address list matched a host target")
	}
}

func TestTargetsTriedInOrder(t *testing.T) {
	l := compileList(t, "match: rcpt sender\naction: block\n@example.org\nalice@example.org\n")
	h, ok := l.Match(&Query{Sender: "alice@example.org", Rcpts: []string{"bob@example.org"}})
	if !ok || h.Target != Rcpt || h.Line != 3 {
		t.Errorf("hit %+v, want the rcpt target first", h)
	}
	// A target the list does not name is not looked at.
	if _, ok := compileList(t, "match: sender\naction: block\n@example.org\n").Match(&Query{Rcpts: []string{"a@example.org"}}); ok {
		t.Error("sender list matched a recipient")
	}
}

const addrList = `match: client-addr
action: block
10.0.0.0/8                # 3
10.1.0.0/16               # 4
10.1.2.0/24               # 5
10.1.2.3                  # 6
10.1.0.0/16               # 7, same network again: line 4 keeps it
10.1.2.3/32               # 8, same as line 6
192.0.2.0/24              # 9
2001:db8::/32             # 10
2001:db8:1::/48           # 11
2001:db8:1::1             # 12
::ffff:198.51.100.7       # 13, an IPv4 address in mapped form
FE80::1%eth0              # 14, the zone does not count
`

func TestAddressRanges(t *testing.T) {
	l := compileList(t, addrList)
	for _, tt := range []struct {
		v    string
		line int
	}{
		{"10.0.0.0", 3},
		{"10.255.255.255", 3},
		{"10.1.0.0", 4},
		{"10.1.2.2", 5},
		{"10.1.2.3", 6},
		{"10.1.2.4", 5},
		{"10.1.3.0", 4},
		{"10.1.255.255", 4},
		{"10.2.0.0", 3},
		{"9.255.255.255", 0},
		{"11.0.0.0", 0},
		{"192.0.2.0", 9},
		{"192.0.2.255", 9},
		{"192.0.3.0", 0},
		{"192.0.1.255", 0},
		{"::ffff:10.1.2.3", 6}, // mapped client address matches IPv4 entries
		{"::ffff:192.0.2.9", 9},
		{"[192.0.2.9]", 9}, // as sendmail writes it
		{"[IPv6:2001:db8:1::1]", 12},
		{"IPv6:2001:db8:1::2", 11},
		{"ipv6:2001:DB8::5", 10},
		{"2001:db8::", 10},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 10},
		{"2001:db9::", 0},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0},
		{"2001:db8:1::", 11},
		{"2001:db8:1::1", 12},
		{"2001:db8:1::1%eth0", 12},
		{"198.51.100.7", 13},
		{"::ffff:198.51.100.7", 13},
		{"198.51.100.8", 0},
		{"fe80::1", 14},
		{"fe80::1%lo", 14},
		{"::a01:203", 0}, // IPv4-compatible, not mapped: not 10.1.2.3
		{"64:ff9b::a01:203", 0},
		{"", 0},
		{"unknown", 0},
		{"10.1.2", 0},
		{"[]", 0},
		{"mail.example.org", 0},
	} {
		h, ok := l.Match(&Query{ClientAddr: tt.v})
		if ok != (tt.line != 0) || ok && h.Line != tt.line {
			t.Errorf("%q: hit %v line %d, want line %d", tt.v, ok, h.Line, tt.line)
		}
	}
}

func TestAddressEdges(t *testing.T) {
	for _, tt := range []struct {
		entries string
		probes  map[string]int // value -> line (3 is the first entry)
	}{
		{"0.0.0.0/0\n", map[string]int{"0.0.0.0": 3, "255.255.255.255": 3, "128.0.0.1": 3, "::1": 0, "::ffff:1.2.3.4": 3}},
		{"::/0\n", map[string]int{"::": 3, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 3, "2001:db8::1": 3, "1.2.3.4": 0}},
		{"255.255.255.255/32\n", map[string]int{"255.255.255.255": 3, "255.255.255.254": 0, "0.0.0.0": 0}},
		{"255.255.255.255\n0.0.0.0/0\n", map[string]int{"255.255.255.255": 3, "255.255.255.254": 4, "0.0.0.0": 4}},
		{"0.0.0.0/0\n255.255.255.255/32\n0.0.0.0/32\n", map[string]int{"255.255.255.255": 4, "0.0.0.0": 5, "0.0.0.1": 3, "255.255.255.254": 3}},
		{"0.0.0.0\n", map[string]int{"0.0.0.0": 3, "0.0.0.1": 0}},
		{"::/0\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n::\n", map[string]int{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 4, "::": 5, "::1": 3, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe": 3}},
		{"ffff::/16\nffff:ffff::/32\n", map[string]int{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 4, "ffff::": 3, "fffe::": 0}},
		{"0.0.0.0/1\n128.0.0.0/1\n", map[string]int{"127.255.255.255": 3, "128.0.0.0": 4}},
		{"0.0.0.0/0\n0.0.0.0/0\n", map[string]int{"1.1.1.1": 3}},
	} {
		l := compileList(t, "match: client-addr\naction: block\n"+tt.entries)
		for v, line := range tt.probes {
			h, ok := l.Match(&Query{ClientAddr: v})
			if ok != (line != 0) || ok && h.Line != line {
				t.Errorf("entries %q, %s: hit %v line %d, want line %d", tt.entries, v, ok, h.Line, line)
			}
		}
	}
}

// testLists writes the lists of a small site into a directory.
func testLists(t *testing.T) (string, []*List) {
	t.Helper()
	dir := t.TempDir()
	writeList(t, dir, "10-local.list", "match: client-addr\naction: allow\n127.0.0.0/8\n::1\n")
	writeList(t, dir, "15-tag-early.list", "match: sender\naction: tag\nheader: X-Early\n@partner.example\n")
	writeList(t, dir, "20-block-clients.list", "match: client-addr client-name\naction: block\nreply: 554 5.7.1 Go away\n192.0.2.0/24\n.dynamic.example.net\n")
	writeList(t, dir, "30-slow.list", "match: sender\naction: tempblock\n@lists.example.org\n@partner.example\n")
	writeList(t, dir, "40-block-senders.list", "match: sender header-from\naction: block\nspam@partner.example\n")
	writeList(t, dir, "50-tag.list", "match: header-from sender\naction: tag\n@partner.example\n@world.example\n")
	writeList(t, dir, ".hidden.list", "not a list at all\n")
	writeList(t, dir, "20-block-clients.list~", "an editor backup\n")
	writeList(t, dir, "README", "not a list\n")
	paths, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := Load(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, ls
}

func TestDir(t *testing.T) {
	dir, ls := testLists(t)
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	want := []string{"10-local", "15-tag-early", "20-block-clients", "30-slow", "40-block-senders", "50-tag"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("lists %q, want %q", names, want)
	}
	if ls[2].Path != filepath.Join(dir, "20-block-clients.list") {
		t.Errorf("path %q", ls[2].Path)
	}
	if _, err := Dir(filepath.Join(dir, "missing")); err == nil {
		t.Error("Dir of a missing directory succeeded")
	}
	// One bad list fails the load, naming it.
	bad := writeList(t, dir, "bad.list", "match: sender\n")
	if _, err := Load([]string{ls[0].Path, bad}, Options{}); err == nil || !strings.Contains(err.Error(), "bad.list:1:") {
		t.Errorf("Load with a bad list: %v", err)
	}
	if _, err := Load([]string{filepath.Join(dir, "none.list")}, Options{}); err == nil {
		t.Error("Load of a missing list succeeded")
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Open of a directory: %v", err)
	}
}

func TestCheck(t *testing.T) {
	_, ls := testLists(t)
	names := func(hs []Hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.List.Name)
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		q     Query
		final string
		line  int
		tags  []string
	}{
		{"nothing", Query{ClientAddr: "198.51.100.1", Sender: "a@example.org"}, "", 0, nil},
		{"allow first", Query{ClientAddr: "127.0.0.1", Sender: "spam@partner.example"}, "10-local", 3, nil},
		{"mapped loopback", Query{ClientAddr: "::ffff:127.0.0.1"}, "10-local", 3, nil},
		{"block client", Query{ClientAddr: "192.0.2.9"}, "20-block-clients", 4, nil},
		{"block by name", Query{ClientName: "host1.dynamic.example.net"}, "20-block-clients", 5, nil},
		// The early tag list is noted, and the search goes on to the
		// tempblock list, which decides before the block list after it.
		{"tag then tempblock", Query{Sender: "spam@partner.example"}, "30-slow", 4, []string{"15-tag-early"}},
		// A block decides before the later tag list is reached.
		{"block before tag", Query{HeaderFrom: []string{"spam@partner.example"}}, "40-block-senders", 3, nil},
		{"tag only", Query{HeaderFrom: []string{"x@world.example"}}, "", 0, []string{"50-tag"}},
		{"two tags", Query{Sender: "ok@partner.example", ClientAddr: "198.51.100.1"}, "30-slow", 4, []string{"15-tag-early"}},
	} {
		r := Check(ls, &tt.q)
		final, line := "", 0
		if r.Final != nil {
			final, line = r.Final.List.Name, r.Final.Line
		}
		if final != tt.final || line != tt.line {
			t.Errorf("%s: final %s:%d, want %s:%d", tt.name, final, line, tt.final, tt.line)
		}
		if got := names(r.Tags); !reflect.DeepEqual(got, tt.tags) {
			t.Errorf("%s: tags %q, want %q", tt.name, got, tt.tags)
		}
	}
	// With only tag lists, every tag list that matches is collected.
	var tags []*List
	for _, l := range ls {
		if l.Action == Tag {
			tags = append(tags, l)
		}
	}
	r := Check(tags, &Query{Sender: "x@partner.example"})
	if r.Final != nil || !reflect.DeepEqual(names(r.Tags), []string{"15-tag-early", "50-tag"}) {
		t.Errorf("tag lists: final %v, tags %q", r.Final, names(r.Tags))
	}
	if r := Check(nil, &Query{Sender: "a@b"}); r.Final != nil || r.Tags != nil {
		t.Errorf("no lists: %+v", r)
	}
}

func TestWhy(t *testing.T) {
	_, ls := testLists(t)
	q := &Query{
		ClientAddr: "192.0.2.9",
		ClientName: "x.dynamic.example.net",
		Sender:     "spam@partner.example",
		HeaderFrom: []string{"a@world.example", "spam@partner.example"},
	}
	var got []string
	for _, h := range Why(ls, q) {
		got = append(got, h.String()+" "+h.Target.String()+" "+h.Value+" "+h.Entry())
	}
	dir := filepath.Dir(ls[0].Path)
	// Every list, every target in the list's order, every value.
	want := []string{
		dir + "/15-tag-early.list:4 sender spam@partner.example @partner.example",
		dir + "/20-block-clients.list:4 client-addr 192.0.2.9 192.0.2.0/24",
		dir + "/20-block-clients.list:5 client-name x.dynamic.example.net .dynamic.example.net",
		dir + "/30-slow.list:4 sender spam@partner.example @partner.example",
		dir + "/40-block-senders.list:3 sender spam@partner.example spam@partner.example",
		dir + "/40-block-senders.list:3 header-from spam@partner.example spam@partner.example",
		dir + "/50-tag.list:4 header-from a@world.example @world.example",
		dir + "/50-tag.list:3 header-from spam@partner.example @partner.example",
		dir + "/50-tag.list:3 sender spam@partner.example @partner.example",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Why gave\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if hits := Why(ls, &Query{ClientAddr: "198.51.100.1"}); len(hits) != 0 {
		t.Errorf("Why with no match: %v", hits)
	}
}

func TestHitEntryOfChangedFile(t *testing.T) {
	dir := t.TempDir()
	path := writeList(t, dir, "a.list", "match: sender\naction: block\nalice@example.org   # why\n")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := l.Match(&Query{Sender: "alice@example.org"})
	if h.Entry() != "alice@example.org" || h.String() != path+":3" {
		t.Errorf("Entry %q String %q", h.Entry(), h.String())
	}
	os.WriteFile(path, []byte("match: sender\n"), 0o644)
	if h.Entry() != "?" {
		t.Errorf("Entry of a line no longer there: %q", h.Entry())
	}
	os.Remove(path)
	if h.Entry() != "?" {
		t.Errorf("Entry of a removed file: %q", h.Entry())
	}
}
