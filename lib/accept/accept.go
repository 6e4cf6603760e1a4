// Package accept decides whether a client and its envelope deserve to be
// accepted, and what the data phase should know about authentication:
// HELO, reverse DNS, DNS lists, SPF, greylisting, limits, header sanity,
// DKIM and DMARC. Each check is one function run by a small harness that
// turns what fired into one verdict, by the rule's own outcome or by a
// score toward thresholds.
package accept

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"

	"mf/lib/dns"
	"mf/lib/dnsbl"
	"mf/lib/greylist"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Policy is the whole configuration of the checks.
type Policy struct {
	R        dns.Resolver  // every lookup; a dns.Cache for one message
	Timeout  time.Duration // the one deadline of all lookups of a phase
	DNSError Action        // what a failed lookup the verdict needs does: Tempfail, or Tag to go on

	Rules  map[string]*Rule  // by check name; a check without a rule is off
	Lists  []*List           // DNSBLs, DNSWLs and RHSBLs, in configuration order
	Health *dnsbl.HealthFile // the lists' health probes, shared for a while; nil: probe every time

	OwnNames   []string       // our host names (helo-own)
	OwnAddrs   []netip.Addr   // our addresses (helo-own)
	OwnDomains []string       // our mail domains (header-own-domain)
	AllowNets  []netip.Prefix // clients that skip the heuristics
	Generic    []*regexp.Regexp

	RejectScore   float64 // 0: off
	TempfailScore float64 // 0: off

	MaxRcpts           int   // 0: no limit
	MaxSize            int64 // 0: no limit
	NullSenderMaxRcpts int

	Greylist         *greylist.List
	GreylistSkipSPF  bool // an SPF pass skips the greylist
	AuthServID       string
	Hostname         string // receiver= of Received-SPF
	DMARC            bool   // verify DKIM and DMARC at data and write Authentication-Results
	MaxVerifications int
}

// DefaultGeneric are the patterns of host names ISPs give their
// customers' dynamic addresses.
var DefaultGeneric = []string{
	`(^|[.-])(dyn|dynamic|dhcp|dial|dialup|ppp|pppoe|pool|dsl|adsl|xdsl|cable|cpe|broadband|client|customer|res|residential|user|host)[0-9.-]`,
	`(^|[.-])[0-9]+-[0-9]+-[0-9]+-[0-9]+([.-]|$)`,
}

// Txn is what the checks look at.
type Txn struct {
	Phase         stream.Phase
	Client        netip.Addr // invalid when unknown
	Helo          string
	Sender        string
	Rcpts         []string // all so far; at rcpt the last is decided on
	AuthUser      string
	Size          int64 // announced (SIZE=, {msg_size}) before data, real at data; 0: unknown
	Header        *stream.Header
	Open          func() (io.Reader, error) // the message at data
	Pending       []string                  // Mf-Add-Header fields earlier stages left
	EarlierRun    bool                      // mf-accept ran at an earlier phase of this message
	EarlierExempt string                    // what exempted the client then (exempt= of its trace)
	EarlierPhase  stream.Phase              // the phase of the last earlier run (phase= of its trace)
	EarlierHits   []string                  // the checks that fired then (hits= of its trace)
	DryRun        bool                      // write no state
}

// Hit is one check that fired.
type Hit struct {
	Rule   *Rule
	Detail string // what it saw, for the log and the trace
}

// Outcome is what the checks decided.
type Outcome struct {
	Verdict    verdict.Verdict
	Rule       *Rule // the rule the verdict comes from; nil for a score or a DNS error
	Hits       []Hit
	Score      float64
	AddHeaders []string
	Exempt     string   // why the heuristics were skipped: auth, allow-net, dnswl:ZONE
	Notes      []string // for the log: lookups that failed, unhealthy zones
	SPF        string   // SPF result, once known
}

// Would lists the dry-run hits: what they would have done.
func (o *Outcome) Would() []string {
	var out []string
	for _, h := range o.Hits {
		if h.Rule.DryRun {
			out = append(out, h.Rule.Action.String()+":"+h.Rule.Name)
		}
	}
	return out
}

type run struct {
	p     *Policy
	t     *Txn
	o     *Outcome
	mu    sync.Mutex
	dnsEr []string
}

func (r *run) hit(name, format string, a ...any) {
	rule := r.p.Rules[name]
	if rule == nil {
		return
	}
	r.hitRule(rule, fmt.Sprintf(format, a...))
}

func (r *run) hitRule(rule *Rule, detail string) {
	r.mu.Lock()
	r.o.Hits = append(r.o.Hits, Hit{rule, detail})
	r.mu.Unlock()
}

func (r *run) note(format string, a ...any) {
	r.mu.Lock()
	r.o.Notes = append(r.o.Notes, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

// dnsFailed records a lookup a check needed and did not get.
func (r *run) dnsFailed(check string, err error) {
	r.mu.Lock()
	r.dnsEr = append(r.dnsEr, check)
	r.o.Notes = append(r.o.Notes, fmt.Sprintf("%s: %v", check, err))
	r.mu.Unlock()
}

func (p *Policy) on(names ...string) bool {
	for _, n := range names {
		if p.Rules[n] != nil {
			return true
		}
	}
	return false
}

// heuristic are the checks an authenticated, allow-listed or DNSWL-listed
// client skips.
func heuristic(name string) bool {
	return strings.HasPrefix(name, "helo-") || strings.HasPrefix(name, "rdns-") || name == "fcrdns" ||
		strings.HasPrefix(name, "dnsbl:") || strings.HasPrefix(name, "rhsbl:") || name == "greylist" ||
		strings.HasPrefix(name, "header-")
}

// Evaluate runs every check that has what it needs at t's phase.
func (p *Policy) Evaluate(ctx context.Context, t *Txn) (*Outcome, error) {
	r := &run{p: p, t: t, o: &Outcome{}}
	after := func(ph stream.Phase) bool { return !t.Phase.Before(ph) }
	switch {
	case t.AuthUser != "":
		r.o.Exempt = "auth"
	case t.Client.IsValid() && inNets(p.AllowNets, t.Client):
		r.o.Exempt = "allow-net"
	}
	// What an earlier phase checked is not checked again at data.
	pre := !(t.Phase == stream.Data && t.EarlierRun)
	// At the second recipient and later, what the connection and the
	// sender gave at an earlier run for this message stands: the lookups
	// are not made again, the checks that fired then count again.
	carried := t.Phase == stream.Rcpt && t.EarlierRun && (t.EarlierPhase == stream.Mail || t.EarlierPhase == stream.Rcpt)
	if carried {
		pre = false
		r.carry(t.EarlierHits)
	}
	if spf := carriedSPF(t.Pending); spf != "" {
		r.o.SPF = spf
	}
	if !pre && r.o.Exempt == "" && strings.HasPrefix(t.EarlierExempt, "dnswl:") {
		r.o.Exempt = t.EarlierExempt // the lists are not asked again
	}
	trusted := r.o.Exempt == "auth" || r.o.Exempt == "allow-net"
	needSPF := !trusted && after(stream.Mail) && r.o.SPF == "" &&
		(p.on("spf-fail", "spf-softfail", "spf-permerror", "spf-temperror") && pre || p.DMARC || p.GreylistSkipSPF && p.Rules["greylist"] != nil)
	if pre && r.o.Exempt != "auth" || needSPF {
		dctx, cancel := context.WithTimeout(ctx, p.Timeout)
		// A panic in one of them reaches Wait, and so the command's own
		// recovery, also when it runs inside mf-bridge.
		var wg conc.WaitGroup
		if pre && r.o.Exempt == "" {
			wg.Go(func() { r.lists(dctx) })
			wg.Go(func() { r.rdns(dctx) })
		}
		if needSPF {
			wg.Go(func() { r.spf(dctx) })
		}
		wg.Wait()
		cancel()
		if pre && r.o.Exempt == "" && after(stream.Helo) && t.Helo != "" {
			r.helo()
		}
	}
	if pre && !trusted && after(stream.Mail) {
		r.applySPF() // unless an earlier run applied it already
	}
	r.limits()
	if t.Phase == stream.Data {
		if r.o.Exempt == "" {
			if err := r.headers(); err != nil {
				return nil, err
			}
		}
		if p.DMARC && !trusted {
			dctx, cancel := context.WithTimeout(ctx, p.Timeout)
			err := r.dmarc(dctx)
			cancel()
			if err != nil {
				return nil, err
			}
		}
	}
	if r.o.Exempt != "" {
		kept := r.o.Hits[:0]
		for _, h := range r.o.Hits {
			if !heuristic(h.Rule.Name) {
				kept = append(kept, h)
			}
		}
		r.o.Hits = kept
	}
	sort.SliceStable(r.o.Hits, func(i, j int) bool { return rank(r.o.Hits[i].Rule.Name) < rank(r.o.Hits[j].Rule.Name) })
	r.decide()
	// The greylist comes last: a message refused anyway leaves no tuple.
	if p.Greylist != nil && p.Rules["greylist"] != nil && r.o.Exempt == "" && !r.o.Verdict.Action.Final() &&
		(t.Phase == stream.Rcpt || t.Phase == stream.Data && !t.EarlierRun) &&
		!(p.GreylistSkipSPF && r.o.SPF == "pass") {
		if err := r.greylist(ctx); err != nil {
			return nil, err
		}
		r.decide()
	}
	return r.o, nil
}

// rank orders the hits of checks run at once as the log shows them.
func rank(name string) int {
	for i, p := range []string{"rdns-missing", "fcrdns", "rdns-generic", "dnsbl:", "rhsbl:", "helo-", "spf-", "max-", "null-", "header-", "dmarc-"} {
		if strings.HasPrefix(name, p) {
			return i
		}
	}
	return 99
}

// carry puts back the hits an earlier run reported, by name: they were
// not final, or the message would not be here.
func (r *run) carry(names []string) {
	for _, n := range names {
		if rule := r.p.Rules[n]; rule != nil && !strings.HasPrefix(n, "max-") && n != "null-sender-rcpts" && n != "greylist" {
			r.hitRule(rule, "carried from an earlier phase")
			continue
		}
		for _, l := range r.p.Lists {
			if l.Rule.Name == n {
				r.hitRule(l.Rule, "carried from an earlier phase")
			}
		}
	}
}

func inNets(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// decide turns the hits into the verdict: a reject beats a quarantine
// beats a tempfail; scores add up toward their thresholds; a lookup the
// checks needed and did not get tempfails when dns-error says so.
func (r *run) decide() {
	o, p := r.o, r.p
	o.Verdict, o.Rule, o.Score = verdict.Verdict{}, nil, 0
	var first [5]*Rule
	var tags []string
	for _, h := range o.Hits {
		if h.Rule.DryRun {
			continue
		}
		a := h.Rule.Action
		if a == Quarantine && r.t.Phase != stream.Data {
			a = Reject // only the data phase can hold a message
		}
		if first[a] == nil {
			first[a] = h.Rule
		}
		switch a {
		case Tag:
			tags = append(tags, h.Rule.Name)
		case Score:
			o.Score += h.Rule.Score
			tags = append(tags, fmt.Sprintf("%s(%g)", h.Rule.Name, h.Rule.Score))
		}
	}
	reply := func(rule *Rule, a verdict.Action, def verdict.Reply) {
		rp := def
		if rule != nil && rule.Reply.Code != 0 {
			rp = rule.Reply
		}
		o.Verdict, o.Rule = verdict.New(a, rp), rule
	}
	switch {
	case first[Reject] != nil:
		reply(first[Reject], verdict.Reject, verdict.DefaultReject)
	case p.RejectScore > 0 && o.Score >= p.RejectScore:
		reply(nil, verdict.Reject, verdict.DefaultReject)
	case first[Quarantine] != nil:
		o.Verdict, o.Rule = verdict.Verdict{Action: verdict.Quarantine, Reply: verdict.Reply{Text: "mf-accept " + first[Quarantine].Name}}, first[Quarantine]
	case first[Tempfail] != nil:
		reply(first[Tempfail], verdict.Tempfail, verdict.DefaultTempfail)
	case p.TempfailScore > 0 && o.Score >= p.TempfailScore:
		reply(nil, verdict.Tempfail, verdict.DefaultTempfail)
	case len(r.dnsEr) > 0 && p.DNSError == Tempfail:
		reply(nil, verdict.Tempfail, verdict.Reply{Code: 451, Status: "4.4.3", Text: "Temporary DNS failure, try again later"})
	}
	o.AddHeaders = without(o.AddHeaders, "X-Mf-Accept:")
	if len(tags) > 0 && !o.Verdict.Action.Final() {
		sort.Strings(tags)
		f := "X-Mf-Accept: " + strings.Join(tags, " ")
		if o.Score != 0 {
			f += fmt.Sprintf("; score=%g", o.Score)
		}
		if !has(r.t.Pending, f) {
			o.AddHeaders = append(o.AddHeaders, f)
		}
	}
}

func without(fields []string, prefix string) []string {
	out := fields[:0]
	for _, f := range fields {
		if !strings.HasPrefix(f, prefix) {
			out = append(out, f)
		}
	}
	return out
}

func has(fields []string, f string) bool {
	for _, x := range fields {
		if x == f {
			return true
		}
	}
	return false
}

// helo checks the HELO argument: syntax, a bare address, one of our own
// names or addresses, an address literal that is not the client's.
func (r *run) helo() {
	h, t, p := ParseHelo(r.t.Helo), r.t, r.p
	switch h.Kind {
	case Invalid:
		r.hit("helo-syntax", "helo=%s", stream.Encode(t.Helo))
	case BareIP:
		r.hit("helo-bare-ip", "helo=%s", t.Helo)
	}
	own := false
	for _, n := range p.OwnNames {
		own = own || h.Kind == FQDN && h.Name == n
	}
	for _, a := range p.OwnAddrs {
		own = own || (h.Kind == Literal || h.Kind == BareIP) && h.Addr == a
	}
	if own {
		r.hit("helo-own", "helo=%s", t.Helo)
	}
	if h.Kind == Literal && t.Client.IsValid() && h.Addr != t.Client.Unmap() {
		r.hit("helo-literal", "helo=%s client=%s", t.Helo, t.Client)
	}
}

// rdns checks the client's PTR: there is one, one of its names resolves
// back to the client, the name does not look dynamic.
func (r *run) rdns(ctx context.Context) {
	p, t := r.p, r.t
	if !t.Client.IsValid() || !p.on("rdns-missing", "fcrdns", "rdns-generic") {
		return
	}
	client := t.Client.Unmap()
	names, err := dns.PTR(ctx, p.R, client)
	if dns.IsNotFound(err) {
		r.hit("rdns-missing", "client=%s", client)
		return
	}
	if err != nil {
		r.dnsFailed("rdns", err)
		return
	}
	if len(names) > 10 {
		names = names[:10]
	}
	confirmed := ""
	var lastErr error
	for _, n := range names {
		as, err := dns.Addrs(ctx, p.R, n, client.Is6())
		if err != nil && !dns.IsNotFound(err) {
			lastErr = err
		}
		for _, a := range as {
			if a == client {
				confirmed = n
			}
		}
		if confirmed != "" {
			break
		}
	}
	switch {
	case confirmed == "" && lastErr != nil:
		r.dnsFailed("fcrdns", lastErr)
	case confirmed == "":
		r.hit("fcrdns", "client=%s ptr=%s", client, stream.Encode(names[0]))
	}
	name := confirmed
	if name == "" {
		name = names[0]
	}
	if generic(p.Generic, name, client) {
		r.hit("rdns-generic", "client=%s ptr=%s", client, stream.Encode(name))
	}
}

// generic reports whether a host name looks like one given to a dynamic
// address: a pattern matches, or the name spells the address's octets.
func generic(pats []*regexp.Regexp, name string, a netip.Addr) bool {
	name = strings.ToLower(name)
	for _, re := range pats {
		if re.MatchString(name) {
			return true
		}
	}
	if a.Is4() {
		o := a.As4()
		for _, f := range []string{"%d-%d-%d-%d", "%d.%d.%d.%d", "%03d%03d%03d%03d"} {
			fwd := fmt.Sprintf(f, o[0], o[1], o[2], o[3])
			rev := fmt.Sprintf(f, o[3], o[2], o[1], o[0])
			if strings.Contains(name, fwd) || strings.Contains(name, rev) {
				return true
			}
		}
		if strings.Contains(name, fmt.Sprintf("%02x%02x%02x%02x", o[0], o[1], o[2], o[3])) {
			return true
		}
	}
	return false
}

// lists asks every DNS list at once.
func (r *run) lists(ctx context.Context) {
	p, t := r.p, r.t
	var asks []dnsbl.Ask
	var lists []*List
	add := func(l *List, key string) {
		asks = append(asks, dnsbl.Ask{Zone: l.Zone, Key: key})
		lists = append(lists, l)
	}
	sender := domainOf(t.Sender)
	helo := ParseHelo(t.Helo)
	for _, l := range p.Lists {
		switch l.Zone.Kind {
		case dnsbl.Block, dnsbl.Allow:
			if t.Client.IsValid() {
				add(l, t.Client.Unmap().String())
			}
		case dnsbl.RHS:
			for _, on := range l.On {
				switch {
				case on == "sender" && sender != "" && !t.Phase.Before(stream.Mail):
					add(l, sender)
				case on == "helo" && helo.Kind == FQDN && !t.Phase.Before(stream.Helo) && helo.Name != sender:
					add(l, helo.Name)
				}
			}
		}
	}
	if len(asks) == 0 {
		return
	}
	for i, res := range dnsbl.Lookup(ctx, p.R, asks, p.Health) {
		l := lists[i]
		switch {
		case !res.Healthy && res.Err != nil:
			r.note("%s: %s skipped: %v", l.Rule.Name, res.Key, res.Err)
		case !res.Healthy:
			r.note("%s: unhealthy (its RFC 5782 test entries answer wrongly or not in time), skipped", l.Rule.Name)
		case !res.Listed:
		case l.Zone.Kind == dnsbl.Allow:
			r.mu.Lock()
			if r.o.Exempt == "" {
				r.o.Exempt = l.Rule.Name
			}
			r.mu.Unlock()
			if l.Rule.DryRun {
				r.note("%s lists %s: would exempt", l.Rule.Name, res.Key)
			}
		default:
			d := fmt.Sprintf("key=%s answer=%s", stream.Encode(res.Key), res.Answers[0])
			if res.Text != "" {
				d += fmt.Sprintf(" text=%q", res.Text)
			}
			r.hitRule(l.Rule, d)
		}
	}
	// A dry-run DNSWL says what it would do and exempts nothing.
	r.mu.Lock()
	for _, l := range p.Lists {
		if l.Rule.Name == r.o.Exempt && l.Rule.DryRun {
			r.o.Exempt = ""
		}
	}
	r.mu.Unlock()
}

// domainOf is the domain of an address, lower case; "" for none.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	d := strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
	if h := ParseHelo(d); h.Kind != FQDN {
		return ""
	}
	return d
}

// limits checks recipients per message, size, and the null sender to
// several recipients.
func (r *run) limits() {
	p, t := r.p, r.t
	n := len(t.Rcpts)
	if p.MaxRcpts > 0 && n > p.MaxRcpts && !t.Phase.Before(stream.Rcpt) {
		r.hit("max-rcpts", "rcpts=%d max=%d", n, p.MaxRcpts)
	}
	if t.Sender == "" && n > max(p.NullSenderMaxRcpts, 1) && !t.Phase.Before(stream.Rcpt) {
		r.hit("null-sender-rcpts", "rcpts=%d", n)
	}
	if p.MaxSize > 0 && t.Size > p.MaxSize {
		r.hit("max-size", "size=%d max=%d", t.Size, p.MaxSize)
	}
}
