// Package dns is the one way mf asks the DNS: a Resolver interface that the
// wire client (github.com/miekg/dns, any server given as host:port) and a
// fake for unit tests both satisfy, with the typed lookups the acceptance
// checks need on top.
//
// Every answer comes from strangers' servers: the typed lookups keep only
// records of the type and name asked for, and errors are *net.DNSError
// (IsNotFound for NXDOMAIN or no data, IsTemporary and IsTimeout for
// SERVFAIL and timeouts) so the SPF and DMARC libraries read them right.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Query types, re-exported so callers need not import the wire package.
const (
	TypeA    = mdns.TypeA
	TypeAAAA = mdns.TypeAAAA
	TypePTR  = mdns.TypePTR
	TypeTXT  = mdns.TypeTXT
	TypeMX   = mdns.TypeMX
)

// Resolver answers one question. The records returned are the answer
// section; an error is a *net.DNSError.
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error)
}

// NotFound is the error for NXDOMAIN or an empty answer.
func NotFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: strings.TrimSuffix(name, "."), IsNotFound: true}
}

// IsNotFound reports whether err says the name or the data does not exist.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// IsTimeout reports whether err is a lookup that ran out of time.
func IsTimeout(err error) bool {
	var de *net.DNSError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) && de.IsTimeout
}

func typeName(t uint16) string { return mdns.TypeToString[t] }

// Cache remembers every answer and error of a Resolver for its life (one
// message, in a stage process), and asks once for a question several
// checks put at the same time.
type Cache struct {
	R  Resolver
	mu sync.Mutex
	m  map[cacheKey]*cacheEntry
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	done chan struct{}
	rrs  []mdns.RR
	err  error
}

// NewCache wraps r.
func NewCache(r Resolver) *Cache { return &Cache{R: r, m: map[cacheKey]*cacheEntry{}} }

// Query asks r unless the question was asked before.
func (c *Cache) Query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	k := cacheKey{strings.ToLower(mdns.Fqdn(name)), qtype}
	c.mu.Lock()
	e, ok := c.m[k]
	if !ok {
		e = &cacheEntry{done: make(chan struct{})}
		c.m[k] = e
		c.mu.Unlock()
		e.rrs, e.err = c.R.Query(ctx, name, qtype)
		close(e.done)
		if IsTimeout(e.err) {
			// A timeout belongs to the caller's deadline, not the name.
			c.mu.Lock()
			delete(c.m, k)
			c.mu.Unlock()
		}
		return e.rrs, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.rrs, e.err
	case <-ctx.Done():
		return nil, &net.DNSError{Err: "timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
}

// Addrs returns the A (and, when v6, AAAA) addresses of name.
func Addrs(ctx context.Context, r Resolver, name string, v6 bool) ([]netip.Addr, error) {
	types := []uint16{TypeA}
	if v6 {
		types = append(types, TypeAAAA)
	}
	var out []netip.Addr
	var firstErr error
	for _, t := range types {
		rrs, err := r.Query(ctx, name, t)
		if err != nil {
			if !IsNotFound(err) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, addrsOf(rrs, name)...)
	}
	if len(out) > 0 {
		return out, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, NotFound(name)
}

// addrsOf keeps the A and AAAA records owned by name or by the end of a
// CNAME chain starting there.
func addrsOf(rrs []mdns.RR, name string) []netip.Addr {
	owners := map[string]bool{strings.ToLower(mdns.Fqdn(name)): true}
	for _, rr := range rrs { // chains come in order
		if c, ok := rr.(*mdns.CNAME); ok && owners[strings.ToLower(c.Hdr.Name)] {
			owners[strings.ToLower(c.Target)] = true
		}
	}
	var out []netip.Addr
	for _, rr := range rrs {
		if !owners[strings.ToLower(rr.Header().Name)] {
			continue
		}
		var ip net.IP
		switch v := rr.(type) {
		case *mdns.A:
			ip = v.A.To4()
		case *mdns.AAAA:
			ip = v.AAAA.To16()
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// PTR returns the names the reverse zone gives for a, without the final dot.
func PTR(ctx context.Context, r Resolver, a netip.Addr) ([]string, error) {
	name := ReverseName(a, "in-addr.arpa", "ip6.arpa")
	rrs, err := r.Query(ctx, name, TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if p, ok := rr.(*mdns.PTR); ok && strings.EqualFold(p.Hdr.Name, name) {
			if _, ok := mdns.IsDomainName(p.Ptr); ok {
				out = append(out, strings.TrimSuffix(p.Ptr, "."))
			}
		}
	}
	if len(out) == 0 {
		return nil, NotFound(name)
	}
	return out, nil
}

// TXT returns the TXT records of name, each one's strings joined (RFC 7208
// 3.3).
func TXT(ctx context.Context, r Resolver, name string) ([]string, error) {
	rrs, err := r.Query(ctx, name, TypeTXT)
	if err != nil {
		return nil, err
	}
	out := txtOf(rrs, name)
	if len(out) == 0 {
		return nil, NotFound(name)
	}
	return out, nil
}

func txtOf(rrs []mdns.RR, name string) []string {
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok && strings.EqualFold(t.Hdr.Name, mdns.Fqdn(name)) {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

// MX returns the MX records of name.
func MX(ctx context.Context, r Resolver, name string) ([]*net.MX, error) {
	rrs, err := r.Query(ctx, name, TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range rrs {
		if m, ok := rr.(*mdns.MX); ok && strings.EqualFold(m.Hdr.Name, mdns.Fqdn(name)) {
			out = append(out, &net.MX{Host: m.Mx, Pref: m.Preference})
		}
	}
	if len(out) == 0 {
		return nil, NotFound(name)
	}
	return out, nil
}

// ReverseName is the name a's reverse lookup asks in zone4 (IPv4, octets
// reversed) or zone6 (IPv6, nibbles reversed), RFC 5782 section 2.1 and
// 2.4: 192.0.2.7 in "zen.test" is 7.2.0.192.zen.test.
func ReverseName(a netip.Addr, zone4, zone6 string) string {
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		o := a.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.%s", o[3], o[2], o[1], o[0], zone4)
	} else {
		const hex = "0123456789abcdef"
		o := a.As16()
		for i := 15; i >= 0; i-- {
			b.WriteByte(hex[o[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hex[o[i]>>4])
			b.WriteByte('.')
		}
		b.WriteString(zone6)
	}
	return mdns.Fqdn(b.String())
}

// Std adapts a Resolver to the lookups of the net package's shape, which
// blitiri.com.ar/go/spf and go-msgauth take.
type Std struct{ R Resolver }

func (s Std) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return TXT(ctx, s.R, name)
}

func (s Std) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return MX(ctx, s.R, name)
}

func (s Std) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	as, err := Addrs(ctx, s.R, host, true)
	if err != nil {
		return nil, err
	}
	out := make([]net.IPAddr, len(as))
	for i, a := range as {
		out[i] = net.IPAddr{IP: a.AsSlice()}
	}
	return out, nil
}

func (s Std) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "not an IP address", Name: addr}
	}
	names, err := PTR(ctx, s.R, a)
	for i := range names {
		names[i] += "." // as net.LookupAddr gives them
	}
	return names, err
}
