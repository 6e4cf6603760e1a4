package accept

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"mf/lib/dns"
	"mf/lib/greylist"
	"mf/lib/stream"
)

// once are the fields RFC 5322 3.6 allows at most once.
var once = []string{"Date", "From", "Sender", "Reply-To", "To", "Cc", "Message-ID", "In-Reply-To", "References", "Subject"}

// headers checks the header block: Date, From and Message-ID there,
// fields that may come once come once, a From of several addresses has a
// Sender, and our own domain in From comes from inside.
func (r *run) headers() error {
	if r.t.Header == nil || !r.p.on("header-missing", "header-duplicate", "header-from-sender", "header-own-domain") {
		return nil
	}
	h := &r.t.Header.Fields
	var missing, dup []string
	for _, k := range []string{"Date", "From", "Message-ID"} {
		if !h.Has(k) {
			missing = append(missing, k)
		}
	}
	for _, k := range once {
		if n := len(h.Values(k)); n > 1 {
			dup = append(dup, k)
		}
	}
	if len(missing) > 0 {
		r.hit("header-missing", "missing=%s", strings.Join(missing, ","))
	}
	if len(dup) > 0 {
		r.hit("header-duplicate", "duplicate=%s", strings.Join(dup, ","))
	}
	from, err := mail.ParseAddressList(h.Get("From"))
	if err == nil && len(from) > 1 && !h.Has("Sender") {
		r.hit("header-from-sender", "from-addresses=%d", len(from))
	}
	if err == nil && r.t.AuthUser == "" {
		for _, a := range from {
			d := domainOf(a.Address)
			for _, own := range r.p.OwnDomains {
				if d == own || strings.HasSuffix(d, "."+own) {
					r.hit("header-own-domain", "from-domain=%s", d)
					return nil
				}
			}
		}
	}
	return nil
}

// dmarc verifies the DKIM signatures, evaluates the From domain's DMARC
// policy with the SPF result (carried from the mail phase, or computed
// now) and writes one Authentication-Results field (RFC 8601).
func (r *run) dmarc(ctx context.Context) error {
	t, p := r.t, r.p
	if t.Open == nil || t.Header == nil {
		return nil
	}
	lookup := func(name string) ([]string, error) { return dns.TXT(ctx, p.R, name) }
	msg, err := t.Open()
	if err != nil {
		return err
	}
	vs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: max(p.MaxVerifications, 1)})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// An unreadable header is no signature.
		r.note("dkim: %v", err)
		vs = nil
	}
	var parts []string
	mailfrom := domainOf(t.Sender)
	if r.o.SPF != "" {
		s := "spf=" + r.o.SPF
		if mailfrom != "" {
			s += " smtp.mailfrom=" + mailfrom
		} else if h := ParseHelo(t.Helo); h.Kind == FQDN {
			s += " smtp.helo=" + h.Name
		}
		parts = append(parts, s)
	}
	var passed []string
	sels := selectors(t.Header.Fields.Values("DKIM-Signature"), len(vs))
	for i, v := range vs {
		res := "pass"
		switch {
		case v.Err == nil:
			passed = append(passed, strings.ToLower(v.Domain))
		case dkim.IsTempFail(v.Err):
			res = "temperror"
		case dkim.IsPermFail(v.Err):
			res = "permerror"
		default:
			res = "fail"
		}
		s := "dkim=" + res
		if ParseHelo(v.Domain).Kind == FQDN {
			s += " header.d=" + strings.ToLower(v.Domain)
		}
		if sels[i] != "" {
			s += " header.s=" + sels[i]
		}
		if v.Err != nil {
			s += fmt.Sprintf(" reason=%q", reasonOf(v.Err))
		}
		parts = append(parts, s)
	}
	if len(vs) == 0 {
		parts = append(parts, "dkim=none")
	}
	dres, policy, fromDomain := r.evalDMARC(lookup, passed, mailfrom)
	s := "dmarc=" + dres
	if policy != "" {
		s += " (p=" + policy + ")"
	}
	if fromDomain != "" {
		s += " header.from=" + fromDomain
	}
	parts = append(parts, s)
	id := p.AuthServID
	if id == "" {
		id = "localhost"
	}
	r.o.AddHeaders = append(r.o.AddHeaders, "Authentication-Results: "+id+";\n\t"+strings.Join(parts, ";\n\t"))
	if dres == "fail" {
		switch policy {
		case "reject":
			r.hit("dmarc-reject", "dmarc=fail from-domain=%s policy=reject", fromDomain)
		case "quarantine":
			r.hit("dmarc-quarantine", "dmarc=fail from-domain=%s policy=quarantine", fromDomain)
		}
	}
	return nil
}

// selectors are the s= tags of the signatures, in the order verified, when
// there is one verification per field; "" where a tag is not a plain
// selector (RFC 6376 3.1: labels of a domain name).
func selectors(fields []string, n int) []string {
	out := make([]string, n)
	if len(fields) != n {
		return out
	}
	for i, f := range fields {
		for _, tag := range strings.Split(f, ";") {
			k, v, ok := strings.Cut(tag, "=")
			if !ok || strings.TrimSpace(k) != "s" {
				continue
			}
			v = strings.Join(strings.Fields(v), "")
			if h := ParseHelo(v + ".x"); h.Kind == FQDN && len(v) <= 63*4 {
				out[i] = strings.ToLower(v)
			}
		}
	}
	return out
}

func reasonOf(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "dkim: ")
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < 80; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	return string(out)
}

// evalDMARC is RFC 7489 section 6.6: the policy of the From domain, or of
// its organizational domain, and whether an SPF or DKIM pass is aligned
// with it.
func (r *run) evalDMARC(lookup func(string) ([]string, error), dkimPass []string, mailfrom string) (res, policy, from string) {
	addrs, err := mail.ParseAddressList(r.t.Header.Fields.Get("From"))
	if err != nil || len(addrs) == 0 {
		return "permerror", "", ""
	}
	from = domainOf(addrs[0].Address)
	for _, a := range addrs[1:] {
		if domainOf(a.Address) != from {
			return "permerror", "", "" // 6.6.1: several From domains
		}
	}
	if from == "" {
		return "permerror", "", ""
	}
	org := orgDomain(from)
	rec, err := dmarc.LookupWithOptions(from, &dmarc.LookupOptions{LookupTXT: lookup})
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		rec, err = dmarc.LookupWithOptions(org, &dmarc.LookupOptions{LookupTXT: lookup})
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy) || dns.IsNotFound(err):
		return "none", "", from
	case dmarc.IsTempFail(err) || dns.IsTimeout(err):
		r.dnsFailed("dmarc", err)
		return "temperror", "", from
	case err != nil:
		return "permerror", "", from
	}
	pol := string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		pol = string(rec.SubdomainPolicy)
	}
	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		if mode == dmarc.AlignmentStrict {
			return d == from
		}
		return d != "" && orgDomain(d) == org
	}
	if r.o.SPF == "pass" && aligned(mailfrom, rec.SPFAlignment) {
		return "pass", pol, from
	}
	for _, d := range dkimPass {
		if aligned(d, rec.DKIMAlignment) {
			return "pass", pol, from
		}
	}
	return "fail", pol, from
}

func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// greylist asks the greylist about the recipients being decided on.
func (r *run) greylist(ctx context.Context) error {
	t, p := r.t, r.p
	if !t.Client.IsValid() {
		return nil
	}
	rule := p.Rules["greylist"]
	rcpts := t.Rcpts
	if t.Phase == stream.Rcpt && len(rcpts) > 0 {
		rcpts = rcpts[len(rcpts)-1:]
	}
	for _, rc := range rcpts {
		tp := p.Greylist.TupleOf(t.Client, t.Sender, rc)
		st, wait, err := p.Greylist.Check(ctx, tp, t.DryRun || rule.DryRun)
		if err != nil {
			return fmt.Errorf("greylist: %w", err)
		}
		if !st.Pass() {
			r.hit("greylist", "tuple=%q status=%s retry-in=%s", tp.String(), st, wait.Round(1e9))
			return nil
		}
		if st != greylist.Allowed {
			r.note("greylist: tuple %q %s", tp.String(), st)
		}
	}
	return nil
}
