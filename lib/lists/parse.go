// Package lists holds mf's allow and block lists: plain text files an
// administrator edits, compiled into a sorted image that answers a lookup
// by binary search and is cached in the state directory, so a list of a
// million entries costs a stage a map of a file, not a parse.
package lists

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"mf/lib/verdict"
)

// Target is what a list is matched against.
type Target int

const (
	ClientAddr Target = iota
	ClientName
	Helo
	Sender
	Rcpt
	HeaderFrom
)

var targetNames = [...]string{"client-addr", "client-name", "helo", "sender", "rcpt", "header-from"}

// Targets are all targets, in the order a person reads an envelope.
var Targets = []Target{ClientAddr, ClientName, Helo, Sender, Rcpt, HeaderFrom}

func (t Target) String() string { return targetNames[t] }

// Action is what a hit means.
type Action int

const (
	Allow     Action = iota // accept now (99), skip the rest
	Block                   // reject (100)
	Tempblock               // tempfail (111)
	Tag                     // add a header field naming the list, go on
)

var actionNames = [...]string{"allow", "block", "tempblock", "tag"}

func (a Action) String() string { return actionNames[a] }

// DefaultHeader is the field a tag list adds, with the list name as value.
const DefaultHeader = "X-Mf-List"

// Def is what a list file declares about itself.
type Def struct {
	Name    string // file name without ".list"
	Path    string
	Targets []Target
	Action  Action
	Reply   verdict.Reply // for block and tempblock
	Header  string        // for tag
}

// fillDefaults gives a list the reply or header its action needs, once
// every directive is read, so that "reply:" may come before "action:".
func (d *Def) fillDefaults() {
	switch {
	case d.Action == Block && d.Reply.Code == 0:
		d.Reply = verdict.Reply{Code: 550, Status: "5.7.1", Text: "Access denied"}
	case d.Action == Tempblock && d.Reply.Code == 0:
		d.Reply = verdict.DefaultTempfail
	case d.Action == Tag && d.Header == "":
		d.Header = DefaultHeader
	}
}

// Verdict is what a hit on the list decides.
func (d *Def) Verdict() verdict.Verdict {
	switch d.Action {
	case Allow:
		return verdict.Verdict{Action: verdict.Accept}
	case Block:
		return verdict.Verdict{Action: verdict.Reject, Reply: d.Reply}
	case Tempblock:
		return verdict.Verdict{Action: verdict.Tempfail, Reply: d.Reply}
	}
	return verdict.Verdict{Action: verdict.Continue}
}

// Entry kinds, as the first byte of a key in the compiled image.
const (
	kindHost       = 'h' // mail.example.org: that host
	kindSubdomain  = 'd' // .example.org: hosts below example.org
	kindAddress    = 'a' // alice@example.org
	kindLocal      = 'l' // postmaster@: that local part, any domain
	kindDomain     = 'm' // @example.org: addresses at example.org
	kindSubdomainA = 'n' // @.example.org: addresses below example.org
)

// entry is one parsed line: an address range or a string key.
type entry struct {
	prefix netip.Prefix // valid for address entries
	key    string       // kind byte + normalised text, otherwise
	line   int
}

// Compiled when first used, so a command that never needs it does not
// pay for it at every start.
var directiveRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-z]+):\s*(.*)$`) })

// parseError is a bad line: file and line, for the administrator.
func parseError(path string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
}

// ListName is the name of the list in file path.
func ListName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".list")
}

// parse reads a list file: directive lines ("match: sender"), then one
// entry per line. '#' starts a comment at the start of a line or after
// white space (a '#' inside an address is part of it).
func parse(path string, r io.Reader, sizeHint int64) (*Def, []entry, error) {
	def := &Def{Name: ListName(path), Path: path, Action: -1}

	// A million-line list would otherwise spend as long growing the slice
	// as parsing; 12 bytes is about the shortest line an entry makes.
	entries := make([]entry, 0, min(sizeHint/12, 1<<24))
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<10)
	n := 0
	for sc.Scan() {
		n++
		text := stripComment(sc.Text())
		if text == "" {
			continue
		}
		if m := directiveRE().FindStringSubmatch(text); m != nil && isDirective(m[1]) {
			if len(entries) > 0 {
				return nil, nil, parseError(path, n, "%q must come before the first entry", m[1]+":")
			}
			if err := def.set(m[1], m[2]); err != nil {
				return nil, nil, parseError(path, n, "%v", err)
			}
			continue
		}
		if len(def.Targets) == 0 || def.Action < 0 {
			return nil, nil, parseError(path, n, "entry before the list says what it matches and does (\"match:\" and \"action:\" lines)")
		}
		e, err := parseEntry(text)
		if err != nil {
			return nil, nil, parseError(path, n, "%v", err)
		}
		if !def.fits(e) {
			return nil, nil, parseError(path, n, "%s cannot match %s (this list matches %s)%s", text, kindWhat(e), def.targetList(), def.hint(text, e))
		}
		e.line = n
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, parseError(path, n+1, "line longer than 64 KiB")
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(def.Targets) == 0 {
		return nil, nil, parseError(path, max(n, 1), "no \"match:\" line says what the list is matched against")
	}
	if def.Action < 0 {
		return nil, nil, parseError(path, max(n, 1), "no \"action:\" line says what a hit means")
	}
	def.fillDefaults()
	return def, entries, nil
}

func stripComment(s string) string {
	s = strings.TrimSpace(s)
	// Any '#' after white space, not only after the first: a directive's
	// value has spaces, and "reply: 550 5.7.1 No # why" must not send the
	// note to the client.
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

func isDirective(name string) bool {
	switch name {
	case "match", "action", "reply", "header":
		return true
	}
	return false
}

func (d *Def) set(name, val string) error {
	switch name {
	case "match":
		if len(d.Targets) > 0 {
			return errors.New(`"match:" given twice`)
		}
		for _, w := range strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			t, ok := lookupName(targetNames[:], w)
			if !ok {
				return fmt.Errorf("unknown match target %q (want %s)", w, strings.Join(targetNames[:], ", "))
			}
			d.Targets = append(d.Targets, Target(t))
		}
		if len(d.Targets) == 0 {
			return fmt.Errorf(`"match:" needs one or more of %s`, strings.Join(targetNames[:], ", "))
		}
	case "action":
		if d.Action >= 0 {
			return errors.New(`"action:" given twice`)
		}
		a, ok := lookupName(actionNames[:], strings.TrimSpace(val))
		if !ok {
			return fmt.Errorf("unknown action %q (want %s)", val, strings.Join(actionNames[:], ", "))
		}
		d.Action = Action(a)
	case "reply":
		if d.Reply.Code != 0 {
			return errors.New(`"reply:" given twice`)
		}
		r, err := verdict.ParseReply(val)
		if err != nil {
			return err
		}
		if r.Code < 400 {
			return fmt.Errorf("reply code %d is not a refusal (4xx or 5xx)", r.Code)
		}
		d.Reply = r
	case "header":
		if d.Header != "" {
			return errors.New(`"header:" given twice`)
		}
		if err := checkFieldName(val); err != nil {
			return err
		}
		d.Header = val
	}
	return d.consistent()
}

// consistent catches a reply that contradicts the action, whichever line
// came first.
func (d *Def) consistent() error {
	if d.Reply.Code == 0 || d.Action < 0 {
		return nil
	}
	switch {
	case d.Action == Block && d.Reply.Code/100 != 5:
		return fmt.Errorf("action block needs a 5xx reply, not %d", d.Reply.Code)
	case d.Action == Tempblock && d.Reply.Code/100 != 4:
		return fmt.Errorf("action tempblock needs a 4xx reply, not %d", d.Reply.Code)
	}
	return nil
}

func checkFieldName(s string) error {
	if s == "" {
		return errors.New("empty header field name")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' {
			return fmt.Errorf("bad header field name %q", s)
		}
	}
	return nil
}

func lookupName(names []string, w string) (int, bool) {
	for i, n := range names {
		if strings.EqualFold(n, w) {
			return i, true
		}
	}
	return 0, false
}

func (d *Def) targetList() string {
	s := make([]string, len(d.Targets))
	for i, t := range d.Targets {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

// fits reports whether some target of the list can be matched by e.
func (d *Def) fits(e entry) bool {
	for _, t := range d.Targets {
		if targetTakes(t, e) {
			return true
		}
	}
	return false
}

func targetTakes(t Target, e entry) bool {
	if e.prefix.IsValid() {
		return t == ClientAddr
	}
	switch e.key[0] {
	case kindHost, kindSubdomain:
		return t == ClientName || t == Helo
	}
	return t == Sender || t == Rcpt || t == HeaderFrom
}

// hint says how to write a domain a list of addresses can match: a bare
// "spam.example" in a sender list is meant as "@spam.example".
func (d *Def) hint(text string, e entry) string {
	if e.prefix.IsValid() || e.key[0] != kindHost && e.key[0] != kindSubdomain {
		return ""
	}
	for _, t := range d.Targets {
		if t == Sender || t == Rcpt || t == HeaderFrom {
			return fmt.Sprintf("; for the addresses at that domain write @%s", strings.ToLower(text))
		}
	}
	return ""
}

func kindWhat(e entry) string {
	if e.prefix.IsValid() {
		return "an address (it is an IP address or network)"
	}
	switch e.key[0] {
	case kindHost, kindSubdomain:
		return "a host name or HELO (it is a host or domain name)"
	}
	return "a mail address (it is an address pattern)"
}

// parseEntry reads one entry: an IP address or network, a host name
// ("mail.example.org", ".example.org" for the hosts below), or a mail
// address pattern ("alice@example.org", "postmaster@", "@example.org",
// "@.example.org").
func parseEntry(s string) (entry, error) {
	if strings.ContainsAny(s, " \t") {
		return entry{}, fmt.Errorf("%q: one entry per line (use '#' for comments)", s)
	}
	if !utf8.ValidString(s) {
		return entry{}, fmt.Errorf("%q is not UTF-8", s)
	}
	if strings.Contains(s, "/") && !strings.Contains(s, "@") { // "/" is allowed in a local part
		p, err := ParseNet(s)
		if err != nil {
			return entry{}, err
		}
		return entry{prefix: p}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap().WithZone("")
		return entry{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if strings.HasPrefix(s, "[") {
		return entry{}, fmt.Errorf("%q: write addresses without brackets", s)
	}
	s = strings.ToLower(s)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		local, domain := s[:i], s[i+1:]
		if strings.ContainsAny(local, "<>") || strings.ContainsAny(domain, "<>") {
			return entry{}, fmt.Errorf("%q: write addresses without angle brackets", s)
		}
		switch {
		case local == "" && domain == "":
			return entry{}, errors.New(`"@" alone matches nothing`)
		case local == "" && strings.HasPrefix(domain, "."):
			if err := checkHost(domain[1:]); err != nil {
				return entry{}, err
			}
			return entry{key: string(kindSubdomainA) + domain[1:]}, nil
		case local == "":
			if err := checkHost(domain); err != nil {
				return entry{}, err
			}
			return entry{key: string(kindDomain) + domain}, nil
		case domain == "":
			return entry{key: string(kindLocal) + local}, nil
		}
		if err := checkHost(domain); err != nil {
			return entry{}, err
		}
		return entry{key: string(kindAddress) + local + "@" + domain}, nil
	}
	if strings.HasPrefix(s, "*.") {
		return entry{}, fmt.Errorf("%q: write %q for the hosts below a domain", s, s[1:])
	}
	if strings.HasPrefix(s, ".") {
		if err := checkHost(s[1:]); err != nil {
			return entry{}, err
		}
		return entry{key: string(kindSubdomain) + s[1:]}, nil
	}
	if err := checkHost(s); err != nil {
		return entry{}, err
	}
	return entry{key: string(kindHost) + s}, nil
}

// ParseNet reads an IP network, "192.0.2.0/24" or "2001:db8::/32", or
// an address alone as the network of that address. It is the one reader
// of networks in mf's lists and configuration, so that what one refuses
// the others do: host bits set (192.0.2.1/24 is most likely a typo for a
// host or for 192.0.2.0/24), IPv4 written as IPv6, a zone.
func ParseNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP network: %v", s, err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 networks in IPv4 form", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; the network is %s", s, p.Masked())
	}
	return p, nil
}

// checkHost accepts a host or domain name: labels of letters, digits,
// '-' and '_' (and UTF-8 for internationalised names), no empty label.
func checkHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%q is not a host or domain name", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("%q has an empty label", h)
		}
		for _, r := range label {
			if r < utf8.RuneSelf && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not a host or domain name (bad character %q)", h, r)
			}
		}
	}
	return nil
}

// formatDef writes the directives back, for the compiled image.
func formatDef(d *Def) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "match: %s\naction: %s\n", d.targetList(), d.Action)
	if d.Reply.Code != 0 {
		fmt.Fprintf(&b, "reply: %s\n", d.Reply)
	}
	if d.Header != "" {
		fmt.Fprintf(&b, "header: %s\n", d.Header)
	}
	return b.Bytes()
}
