// Package dnsbl asks DNS lists (RFC 5782): DNSBLs and DNSWLs keyed by the
// client address, RHSBLs keyed by a domain, each zone with the return
// codes that count and a health probe of its test entries, all zones at
// once under one deadline.
package dnsbl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
	"github.com/sourcegraph/conc"

	"mf/lib/dns"
)

// Kind is what a zone lists.
type Kind int

const (
	Block Kind = iota // DNSBL: client addresses
	Allow             // DNSWL: client addresses
	RHS               // RHSBL: domains
)

func (k Kind) String() string { return [...]string{"dnsbl", "dnswl", "rhsbl"}[k] }

// Zone is one list.
type Zone struct {
	Name    string // the zone, "zen.example"
	Kind    Kind
	Codes   []netip.Prefix // answers that count; empty: any 127.0.0.0/8 answer but 127.0.0.1
	Mask    uint8          // when set, an answer counts if its last octet has one of these bits
	R       dns.Resolver   // when set, asked instead of the resolver of Lookup (a local rbldnsd mirror)
	Server  string         // the address of R, for HealthFile
	Test    string         // the listed test entry, when not RFC 5782's (Spamhaus DBL: dbltest.com)
	NoProbe bool           // trust the zone without asking its test entries
}

func (z *Zone) resolver(r dns.Resolver) dns.Resolver {
	if z.R != nil {
		return z.R
	}
	return r
}

// Counts reports whether the answer a is one the zone's filter takes.
func (z *Zone) Counts(a netip.Addr) bool {
	if !a.Is4() || !loopback.Contains(a) || a == notListed || reserved.Contains(a) {
		return false
	}
	if z.Mask != 0 && a.As4()[3]&z.Mask == 0 {
		return false
	}
	if len(z.Codes) == 0 {
		return true
	}
	for _, p := range z.Codes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	loopback  = netip.MustParsePrefix("127.0.0.0/8")
	notListed = netip.MustParseAddr("127.0.0.1")
	// 127.255.255.0/24 is where lists such as Spamhaus say "you may not
	// ask me" (a public resolver, over quota): an error, not a listing.
	reserved = netip.MustParsePrefix("127.255.255.0/24")
)

// ParseCodes reads a filter: addresses, CIDR networks and ranges
// (127.0.0.2-127.0.0.11), comma-separated, all in 127.0.0.0/8.
func ParseCodes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var ps []netip.Prefix
		if lo, hi, ok := strings.Cut(f, "-"); ok {
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() || b.Less(a) {
				return nil, fmt.Errorf("return code range %q: want A-B, IPv4, A <= B", f)
			}
			for x := a; ; x = x.Next() {
				ps = append(ps, netip.PrefixFrom(x, 32))
				if x == b || len(ps) > 256 {
					break
				}
			}
			if len(ps) > 256 {
				return nil, fmt.Errorf("return code range %q: more than 256 codes, use a network", f)
			}
		} else if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			ps = append(ps, p.Masked())
		} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
			ps = append(ps, netip.PrefixFrom(a, 32))
		} else {
			return nil, fmt.Errorf("return code %q: not an IPv4 address, network or range", f)
		}
		for _, p := range ps {
			if !loopback.Contains(p.Addr()) || p.Bits() < 8 {
				return nil, fmt.Errorf("return code %q: outside 127.0.0.0/8", f)
			}
		}
		out = append(out, ps...)
	}
	return out, nil
}

// Query is the name asked for key: the reversed address or the domain,
// in the zone.
func (z *Zone) Query(key string) (string, error) {
	if z.Kind == RHS {
		d := strings.ToLower(strings.TrimSuffix(key, "."))
		if _, ok := mdns.IsDomainName(d); !ok || d == "" || strings.HasPrefix(d, "[") {
			return "", fmt.Errorf("%q is not a domain", key)
		}
		name := mdns.Fqdn(d + "." + z.Name)
		if len(name) > 254 {
			return "", fmt.Errorf("%q is too long for %s", key, z.Name)
		}
		return name, nil
	}
	a, err := netip.ParseAddr(key)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address", key)
	}
	return dns.ReverseName(a.WithZone(""), z.Name, z.Name), nil
}

// Result is what one zone said about one key.
type Result struct {
	Zone    *Zone
	Key     string       // the address or domain asked about
	Listed  bool         // an answer passed the zone's filter
	Answers []netip.Addr // every A record of the answer
	Text    string       // the TXT record, when listed
	Healthy bool         // the zone answered its test entries right and in time
	Err     error        // a lookup that failed (timeout, SERVFAIL)
}

// Ask is one question for Lookup: key in zone.
type Ask struct {
	Zone *Zone
	Key  string
}

// Lookup asks every question and probes the health of every zone they
// name, all at once; ctx carries the one deadline. The results are in
// the order of asks. A zone that is unhealthy has Listed false in all
// its results, whatever it answered.
//
// hf, when not nil, holds the probes' answers of other processes, and is
// told the answers of the probes made here.
func Lookup(ctx context.Context, r dns.Resolver, asks []Ask, hf *HealthFile) []Result {
	out := make([]Result, len(asks))
	health := map[*Zone]*probe{}
	// A panic in a probe or a query reaches Wait, and so the command's own
	// recovery, also when it runs inside mf-bridge.
	var wg conc.WaitGroup
	for _, a := range asks {
		if health[a.Zone] == nil {
			p := &probe{}
			health[a.Zone] = p
			if ok, known := hf.Get(a.Zone); known {
				p.ok = ok
				continue
			}
			wg.Go(func() {
				p.ok = Healthy(ctx, a.Zone.resolver(r), a.Zone)
				if ctx.Err() == nil {
					hf.Put(a.Zone, p.ok) // a probe cut short says nothing for later
				}
			})
		}
	}
	for i, a := range asks {
		out[i] = Result{Zone: a.Zone, Key: a.Key}
		wg.Go(func() { out[i].ask(ctx, a.Zone.resolver(r)) })
	}
	wg.Wait()
	for i := range out {
		out[i].Healthy = health[out[i].Zone].ok && out[i].Err == nil
		if !out[i].Healthy {
			out[i].Listed = false
		}
	}
	return out
}

type probe struct{ ok bool }

func (res *Result) ask(ctx context.Context, r dns.Resolver) {
	name, err := res.Zone.Query(res.Key)
	if err != nil {
		res.Err = err
		return
	}
	as, err := dns.Addrs(ctx, r, name, false)
	if dns.IsNotFound(err) {
		return
	}
	if err != nil {
		res.Err = err
		return
	}
	res.Answers = as
	for _, a := range as {
		if res.Zone.Counts(a) {
			res.Listed = true
		}
	}
	if res.Listed {
		if txt, err := dns.TXT(ctx, r, name); err == nil {
			res.Text = clean(strings.Join(txt, " "))
		}
	}
}

// clean keeps printable ASCII of a stranger's TXT record, at most 200 bytes.
func clean(s string) string {
	b := make([]byte, 0, min(len(s), 200))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// Healthy asks a zone for its RFC 5782 test entries: 127.0.0.2 (or the
// domain "test") must be listed with an answer in 127.0.0.0/8, and
// 127.0.0.1 (the domain "invalid") must not be. A zone that answers
// otherwise, or not in time, lists everything or nothing and is not
// trusted.
func Healthy(ctx context.Context, r dns.Resolver, z *Zone) bool {
	if z.NoProbe {
		return true
	}
	yes, no := "127.0.0.2", "127.0.0.1"
	if z.Kind == RHS {
		yes, no = "test", "invalid"
	}
	if z.Test != "" {
		yes = z.Test
	}
	var wg conc.WaitGroup // a panic reaches Wait, and the command's recovery
	var listed, unlisted bool
	wg.Go(func() {
		name, _ := z.Query(yes)
		as, err := dns.Addrs(ctx, r, name, false)
		for _, a := range as {
			if err == nil && a.Is4() && loopback.Contains(a) && !reserved.Contains(a) {
				listed = true
			}
		}
	})
	wg.Go(func() {
		name, _ := z.Query(no)
		_, err := dns.Addrs(ctx, r, name, false)
		unlisted = dns.IsNotFound(err)
	})
	wg.Wait()
	return listed && unlisted
}
