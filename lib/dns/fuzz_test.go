package dns

import (
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzAnswer feeds wire-format answers, as a stranger's server could send
// them, to the code that picks records out of them.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		"h.test. A 192.0.2.1", "h.test. CNAME x.test.", "x.test. AAAA 2001:db8::1",
		`h.test. TXT "v=spf1" " -all"`, "h.test. MX 10 mx.test.", "h.test. PTR h.test.",
	} {
		rr, _ := mdns.NewRR(s)
		m := new(mdns.Msg)
		m.SetQuestion("h.test.", mdns.TypeA)
		m.Answer = append(m.Answer, rr)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(mdns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		for _, a := range addrsOf(m.Answer, "h.test") {
			if !a.IsValid() {
				t.Fatal("invalid address kept")
			}
		}
		txtOf(m.Answer, "h.test")
		f := &Fake{rrs: m.Answer}
		ctx := t.Context()
		MX(ctx, f, "h.test")
		PTR(ctx, f, netip.MustParseAddr("192.0.2.1"))
	})
}
