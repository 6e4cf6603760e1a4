package lists

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mf/lib/verdict"
)

// writeList writes a list file named name in dir and returns its path.
func writeList(t testing.TB, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// compileList compiles text as a list file, in memory.
func compileList(t testing.TB, text string) *List {
	t.Helper()
	l, err := Open(writeList(t, t.TempDir(), "test.list", text), Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return l
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"entry before match", "192.0.2.1\n", 1, `before the list says what it matches`},
		{"entry before action", "# c\nmatch: client-addr\n192.0.2.1\naction: block\n", 3, `"action:"`},
		{"unknown target", "match: client-ip\naction: block\n", 1, `unknown match target "client-ip"`},
		{"unknown target among good", "match: sender, recipient\naction: block\n", 1, `"recipient"`},
		{"empty match", "match:\naction: block\n", 1, `needs one or more`},
		{"unknown action", "match: sender\naction: deny\n", 2, `unknown action "deny"`},
		{"host bits", "match: client-addr\naction: block\n\n192.0.2.1/24\n", 4, "192.0.2.0/24"},
		{"host bits v6", "match: client-addr\naction: block\n2001:db8::1/32\n", 3, "2001:db8::/32"},
		{"wildcard", "match: client-name\naction: block\n*.example.org\n", 3, `".example.org"`},
		{"address in sender list", "match: sender\naction: block\n192.0.2.1\n", 3, "cannot match an address"},
		{"network in helo list", "match: helo\naction: block\n192.0.2.0/24\n", 3, "this list matches helo"},
		{"host in sender list", "match: sender rcpt\naction: block\nmail.example.org\n", 3, "a host name or HELO"},
		{"address pattern in client list", "match: client-addr client-name\naction: block\n@example.org\n", 3, "a mail address"},
		{"directive after entry", "match: sender\naction: block\n@example.org\nreply: 550 5.7.1 No\n", 4, `"reply:" must come before the first entry`},
		{"block with 4xx", "match: sender\naction: block\nreply: 451 4.7.1 Later\n", 3, "action block needs a 5xx reply"},
		{"4xx before block", "match: sender\nreply: 451 4.7.1 Later\naction: block\n", 3, "action block needs a 5xx reply"},
		{"tempblock with 5xx", "match: sender\naction: tempblock\nreply: 550\n", 3, "action tempblock needs a 4xx reply"},
		{"2xx reply", "match: sender\naction: block\nreply: 250 2.0.0 OK\n", 3, "not a refusal"},
		{"status disagrees", "match: sender\naction: block\nreply: 550 4.7.1 No\n", 3, "does not agree"},
		{"missing match", "action: block\n\n# only\n", 3, `no "match:" line`},
		{"missing action", "match: sender\n", 1, `no "action:" line`},
		{"empty file", "", 1, `no "match:" line`},
		{"match twice", "match: sender\nmatch: rcpt\naction: block\n", 2, "given twice"},
		{"action twice", "match: sender\naction: block\naction: allow\n", 3, "given twice"},
		{"reply twice", "match: sender\naction: block\nreply: 550\nreply: 554\n", 4, "given twice"},
		{"header twice", "match: sender\naction: tag\nheader: X-A\nheader: X-B\n", 4, "given twice"},
		{"bad header name", "match: sender\naction: tag\nheader: X Bad\n", 3, "header field name"},
		{"header with colon", "match: sender\naction: tag\nheader: X-A:\n", 3, "header field name"},
		{"two entries on a line", "match: sender\naction: block\na@b.org c@d.org\n", 3, "one entry per line"},
		{"brackets", "match: client-addr\naction: block\n[192.0.2.1]\n", 3, "without brackets"},
		{"angle brackets", "match: sender\naction: block\n<alice@example.org>\n", 3, "without angle brackets"},
		{"at alone", "match: sender\naction: block\n@\n", 3, "matches nothing"},
		{"mapped network", "match: client-addr\naction: block\n::ffff:192.0.2.0/120\n", 3, "IPv4 form"},
		{"bad network", "match: client-addr\naction: block\n192.0.2.0/33\n", 3, "not an IP network"},
		{"bad host", "match: helo\naction: block\nex!ample.org\n", 3, "bad character"},
		{"empty label", "match: helo\naction: block\na..example.org\n", 3, "empty label"},
		{"bad domain", "match: sender\naction: block\n@exa$mple.org\n", 3, "bad character"},
		{"bad subdomain", "match: sender\naction: block\n@..example.org\n", 3, "empty label"},
		{"long host", "match: helo\naction: block\n" + strings.Repeat("a.", 130) + "org\n", 3, "not a host or domain name"},
		{"not UTF-8", "match: sender\naction: block\ncaf\xe9@example.org\n", 3, "not UTF-8"},
		{"long line", "match: sender\naction: block\n" + strings.Repeat("a", 70<<10) + "@example.org\n", 3, "longer than 64 KiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeList(t, t.TempDir(), "bad.list", tt.text)
			_, err := Open(path, Options{})
			if err == nil {
				t.Fatalf("%q accepted", tt.text)
			}
			prefix := path + ":" + strconv.Itoa(tt.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q, want it to start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestParseDirectives(t *testing.T) {
	for _, tt := range []struct {
		text    string
		targets []Target
		action  Action
		reply   verdict.Reply
		header  string
		verdict string
	}{
		{"match: client-addr\naction: allow\n", []Target{ClientAddr}, Allow, verdict.Reply{}, "", "accept"},
		{"match: Sender,RCPT header-from\naction: BLOCK\n", []Target{Sender, Rcpt, HeaderFrom}, Block,
			verdict.Reply{Code: 550, Status: "5.7.1", Text: "Access denied"}, "", "reject 550 5.7.1 Access denied"},
		{"reply: 554 5.7.1 Go away\nmatch: helo\naction: block\n", []Target{Helo}, Block,
			verdict.Reply{Code: 554, Status: "5.7.1", Text: "Go away"}, "", "reject 554 5.7.1 Go away"},
		{"match:\tclient-name\t,\thelo\naction:tempblock\n", []Target{ClientName, Helo}, Tempblock,
			verdict.DefaultTempfail, "", "tempfail 451 4.7.1 Try again later"},
		{"match: sender\naction: tempblock\nreply: 421 4.3.2 Busy\n", []Target{Sender}, Tempblock,
			verdict.Reply{Code: 421, Status: "4.3.2", Text: "Busy"}, "", "tempfail 421 4.3.2 Busy"},
		{"match: header-from\naction: tag\n", []Target{HeaderFrom}, Tag, verdict.Reply{}, DefaultHeader, "continue"},
		{"header: X-Partner\nmatch: header-from\naction: tag\n", []Target{HeaderFrom}, Tag, verdict.Reply{}, "X-Partner", "continue"},
	} {
		l := compileList(t, tt.text)
		if !equalTargets(l.Targets, tt.targets) || l.Action != tt.action || l.Reply != tt.reply || l.Header != tt.header {
			t.Errorf("%q: targets %v action %v reply %#v header %q", tt.text, l.Targets, l.Action, l.Reply, l.Header)
		}
		if got := l.Verdict().String(); got != tt.verdict {
			t.Errorf("%q: verdict %q, want %q", tt.text, got, tt.verdict)
		}
		if l.Name != "test" {
			t.Errorf("name %q, want test", l.Name)
		}
	}
}

func equalTargets(a, b []Target) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestComments(t *testing.T) {
	l := compileList(t, `# A list.
match: sender rcpt   # what
action: block        # and how
reply: 550 5.7.1 Go away   # a note for the admin, not for the client
	# indented comment

alice@example.org    # trailing comment
a#b@example.org
#bob@example.org
c@example.org	# after a tab
`)
	if l.Reply.Text != "Go away" {
		t.Errorf("reply text %q: the comment went into the SMTP reply", l.Reply.Text)
	}
	q := func(v string) *Query { return &Query{Sender: v} }
	for v, want := range map[string]int{"alice@example.org": 7, "a#b@example.org": 8, "bob@example.org": 0, "c@example.org": 10} {
		h, ok := l.Match(q(v))
		if (want != 0) != ok || (ok && h.Line != want) {
			t.Errorf("%s: hit %v at line %d, want line %d", v, ok, h.Line, want)
		}
	}
	if h, _ := l.Match(q("alice@example.org")); h.Entry() != "alice@example.org" {
		t.Errorf("Entry() = %q", h.Entry())
	}
}

func TestListName(t *testing.T) {
	for in, want := range map[string]string{"/etc/mf/lists/20-block.list": "20-block", "x.list": "x", "/a/b": "b", "a.list.list": "a.list"} {
		if got := ListName(in); got != want {
			t.Errorf("ListName(%q) = %q, want %q", in, got, want)
		}
	}
}
