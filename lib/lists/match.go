package lists

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir lists the *.list files of dir in name order, the order they are
// tried in. Other files (editor backups, .dpkg-old) are left alone.
func Dir(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	var out []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".list") && !strings.HasPrefix(de.Name(), ".") {
			out = append(out, filepath.Join(dir, de.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Load opens the list files in order.
func Load(paths []string, o Options) ([]*List, error) {
	out := make([]*List, 0, len(paths))
	for _, p := range paths {
		l, err := Open(p, o)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Query holds the values lists are matched against. Empty values are not
// matched.
type Query struct {
	ClientAddr string
	ClientName string
	Helo       string
	Sender     string
	Rcpts      []string // at rcpt only the recipient being decided on
	HeaderFrom []string
}

// Values are the values of q that target t is matched against.
func (q *Query) Values(t Target) []string {
	switch t {
	case ClientAddr:
		return nonEmpty(q.ClientAddr)
	case ClientName:
		return nonEmpty(q.ClientName)
	case Helo:
		return nonEmpty(q.Helo)
	case Sender:
		return nonEmpty(q.Sender)
	case Rcpt:
		return q.Rcpts
	case HeaderFrom:
		return q.HeaderFrom
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// Hit is a list entry that matched.
type Hit struct {
	List   *List
	Target Target
	Value  string // the value that matched, as given
	Line   int    // line of the entry in the list file
}

// Entry reads the matching entry back from the list file, without its
// comment, for a person reading why a list matched.
func (h Hit) Entry() string {
	if h.List.dyn != nil {
		return h.List.dyn[h.Line-1]
	}
	f, _, err := openRegular(h.List.Path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		if n == h.Line {
			return stripComment(sc.Text())
		}
	}
	return "?"
}

func (h Hit) String() string {
	return fmt.Sprintf("%s:%d", h.List.Path, h.Line)
}

// Match returns the first hit in l, trying its targets in the order the
// list names them.
func (l *List) Match(q *Query) (Hit, bool) {
	for _, t := range l.Targets {
		for _, v := range q.Values(t) {
			if line, ok := l.matchValue(t, v); ok {
				return Hit{l, t, v, line}, true
			}
		}
	}
	return Hit{}, false
}

func (l *List) matchValue(t Target, v string) (int, bool) {
	switch t {
	case ClientAddr:
		a, ok := parseClientAddr(v)
		if !ok {
			return 0, false
		}
		return l.lookupAddr(a)
	case ClientName, Helo:
		return l.matchHost(strings.TrimSuffix(strings.ToLower(v), "."), kindHost, kindSubdomain)
	case Sender:
		if line, ok := l.matchExact(v); ok {
			return line, true
		}
	}
	return l.matchAddress(strings.ToLower(v))
}

// parseClientAddr reads a client address as MTAs write it: bare,
// bracketed, or "IPv6:2001:db8::1" as sendmail writes it; unmapped,
// without a zone.
func parseClientAddr(v string) (netip.Addr, bool) {
	v = strings.Trim(v, "[]")
	a, err := netip.ParseAddr(v)
	if err != nil {
		if a, err = netip.ParseAddr(strings.TrimPrefix(strings.ToLower(v), "ipv6:")); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

// matchHost tries the host itself, then each domain above it.
func (l *List) matchHost(h string, exact, below byte) (int, bool) {
	if h == "" {
		return 0, false
	}
	if line, ok := l.lookupKey(string(exact) + h); ok {
		return line, true
	}
	for i := strings.IndexByte(h, '.'); i >= 0; i = strings.IndexByte(h, '.') {
		h = h[i+1:]
		if line, ok := l.lookupKey(string(below) + h); ok {
			return line, true
		}
	}
	return 0, false
}

func (l *List) matchAddress(a string) (int, bool) {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return l.lookupKey(string(kindLocal) + a) // "postmaster" as a recipient
	}
	// The trailing dot goes before the whole address is looked up too, or
	// "alice@example.org." would pass an "alice@example.org" entry that
	// "@example.org" catches.
	local, domain := a[:i], strings.TrimSuffix(a[i+1:], ".")
	if line, ok := l.lookupKey(string(kindAddress) + local + "@" + domain); ok {
		return line, true
	}
	if line, ok := l.lookupKey(string(kindLocal) + local); ok {
		return line, true
	}
	return l.matchHost(domain, kindDomain, kindSubdomainA)
}

// Result is what a set of lists decides: the final hit, if any, and the
// tag hits met before it.
type Result struct {
	Final *Hit
	Tags  []Hit
}

// Check tries the lists in order. A hit on an allow, block or tempblock
// list is final and ends the search; a hit on a tag list is noted and the
// search goes on, so a tag list never shadows a block list after it.
func Check(ls []*List, q *Query) Result {
	var r Result
	for _, l := range ls {
		h, ok := l.Match(q)
		if !ok {
			continue
		}
		if l.Action == Tag {
			r.Tags = append(r.Tags, h)
			continue
		}
		r.Final = &h
		return r
	}
	return r
}

// Why returns every hit in every list, for a person asking why: for each
// list, each target's first matching entry.
func Why(ls []*List, q *Query) []Hit {
	var hits []Hit
	for _, l := range ls {
		for _, t := range l.Targets {
			for _, v := range q.Values(t) {
				if line, ok := l.matchValue(t, v); ok {
					hits = append(hits, Hit{l, t, v, line})
				}
			}
		}
	}
	return hits
}
