package accept

import (
	"net/netip"
	"strings"
)

// HeloKind is what a HELO/EHLO argument is.
type HeloKind int

const (
	Invalid HeloKind = iota
	FQDN             // a host name of two labels or more
	Literal          // an address literal, [192.0.2.7] or [IPv6:2001:db8::1]
	BareIP           // an address without the brackets RFC 5321 4.1.3 wants
)

// Helo is a parsed HELO argument.
type Helo struct {
	Kind HeloKind
	Name string     // lower case, no final dot (FQDN)
	Addr netip.Addr // Literal, BareIP
}

// ParseHelo reads a HELO argument, as a stranger sends it.
func ParseHelo(s string) Helo {
	if len(s) > 255 {
		return Helo{}
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return Helo{}
		}
		v6 := false
		if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
			inner, v6 = inner[5:], true
		}
		a, err := netip.ParseAddr(inner)
		if err != nil || a.Zone() != "" || a.Is4() == v6 || a.Is4In6() {
			return Helo{}
		}
		return Helo{Kind: Literal, Addr: a}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return Helo{Kind: BareIP, Addr: a.Unmap()}
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	labels := strings.Split(name, ".")
	if len(labels) < 2 || len(name) > 253 {
		return Helo{}
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return Helo{}
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return Helo{}
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return Helo{} // 192.0.2.300 and friends
	}
	return Helo{Kind: FQDN, Name: name}
}
