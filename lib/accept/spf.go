package accept

import (
	"context"
	"fmt"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"

	"mf/lib/dns"
)

// spf checks the envelope sender (postmaster@HELO for the null sender)
// over our resolver and writes Received-SPF (RFC 7208 section 9.1), which
// the envelope carries to the data phase.
func (r *run) spf(ctx context.Context) {
	t, p := r.t, r.p
	if !t.Client.IsValid() {
		return
	}
	ip := net.IP(t.Client.Unmap().AsSlice())
	if t.Sender == "" && heloForSPF(t.Helo) == "" || t.Sender != "" && domainOf(t.Sender) == "" {
		// No domain to ask about: RFC 7208 4.3, none.
		r.mu.Lock()
		r.o.SPF = "none"
		r.o.AddHeaders = append(r.o.AddHeaders, receivedSPF("none", t.Client.Unmap().String(), t.Sender, t.Helo, p.Hostname))
		r.mu.Unlock()
		return
	}
	res, err := spf.CheckHostWithSender(ip, heloForSPF(t.Helo), t.Sender,
		spf.WithResolver(dns.Std{R: p.R}), spf.WithContext(ctx))
	if err != nil && res != spf.Pass {
		r.note("spf: %s: %v", res, err)
	}
	r.mu.Lock()
	r.o.SPF = string(res)
	r.o.AddHeaders = append(r.o.AddHeaders, receivedSPF(string(res), t.Client.Unmap().String(), t.Sender, t.Helo, p.Hostname))
	r.mu.Unlock()
	if res == spf.TempError && p.Rules["spf-temperror"] == nil {
		r.dnsFailed("spf", err)
	}
}

// applySPF fires the rule of an SPF result, computed now or carried.
func (r *run) applySPF() {
	switch r.o.SPF {
	case "fail":
		r.hit("spf-fail", "spf=fail sender=%s", safeAddr(r.t.Sender))
	case "softfail":
		r.hit("spf-softfail", "spf=softfail sender=%s", safeAddr(r.t.Sender))
	case "permerror":
		r.hit("spf-permerror", "spf=permerror sender=%s", safeAddr(r.t.Sender))
	case "temperror":
		r.hit("spf-temperror", "spf=temperror sender=%s", safeAddr(r.t.Sender))
	}
}

func heloForSPF(h string) string {
	if ParseHelo(h).Kind == FQDN {
		return h
	}
	return ""
}

// receivedSPF writes the field; a stranger's values go in only when they
// are of the syntax the field wants.
func receivedSPF(res, client, sender, helo, receiver string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received-SPF: %s client-ip=%s;", res, client)
	if s := safeAddr(sender); s != "" && s != "<>" {
		fmt.Fprintf(&b, " envelope-from=\"%s\";", s)
	}
	if h := ParseHelo(helo); h.Kind == FQDN {
		fmt.Fprintf(&b, " helo=%s;", h.Name)
	}
	if receiver != "" {
		fmt.Fprintf(&b, " receiver=%s;", receiver)
	}
	if sender == "" {
		b.WriteString(" identity=helo")
	} else {
		b.WriteString(" identity=mailfrom")
	}
	return b.String()
}

// safeAddr is an address fit for a quoted string, or "" if it is not.
func safeAddr(s string) string {
	if s == "" {
		return "<>"
	}
	if len(s) > 320 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == ';' {
			return ""
		}
	}
	return s
}

// carriedSPF is the result of a Received-SPF field an earlier phase left
// in the envelope.
func carriedSPF(pending []string) string {
	for _, f := range pending {
		if v, ok := strings.CutPrefix(f, "Received-SPF: "); ok {
			res, _, _ := strings.Cut(v, " ")
			switch res {
			case "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror":
				return res
			}
		}
	}
	return ""
}
