package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestReverseName(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"192.0.2.7", "7.2.0.192.zen.test."},
		{"::ffff:192.0.2.7", "7.2.0.192.zen.test."},
		{"2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test."},
	} {
		if got := ReverseName(netip.MustParseAddr(c.addr), "zen.test", "zen.test"); got != c.want {
			t.Errorf("%s: got %s, want %s", c.addr, got, c.want)
		}
	}
}

// server runs a miekg/dns server on loopback answering from h, over UDP
// and TCP on one port.
func server(t *testing.T, h mdns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	us := &mdns.Server{PacketConn: pc, Handler: h}
	ts := &mdns.Server{Listener: l, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return pc.LocalAddr().String()
}

func TestClient(t *testing.T) {
	addr := server(t, func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		name := q.Question[0].Name
		switch {
		case name == "a.test.":
			rr, _ := mdns.NewRR("a.test. 60 A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
			// a record for another name is not a's
			rr, _ = mdns.NewRR("b.test. 60 A 192.0.2.99")
			m.Answer = append(m.Answer, rr)
		case name == "big.test.":
			if w.LocalAddr().Network() == "udp" {
				m.Truncated = true
				break
			}
			rr, _ := mdns.NewRR(`big.test. 60 TXT "v=spf1 " "-all"`)
			m.Answer = append(m.Answer, rr)
		case name == "fail.test.":
			m.Rcode = mdns.RcodeServerFailure
		case name == "slow.test.":
			return // no answer at all
		default:
			m.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	c, err := NewClient([]string{addr}, "", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	as, err := Addrs(ctx, c, "a.test", false)
	if err != nil || len(as) != 1 || as[0].String() != "192.0.2.1" {
		t.Errorf("a.test: %v %v", as, err)
	}
	txt, err := TXT(ctx, c, "big.test")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Errorf("big.test over tcp: %q %v", txt, err)
	}
	if _, err := Addrs(ctx, c, "none.test", false); !IsNotFound(err) {
		t.Errorf("nxdomain: %v", err)
	}
	_, err = Addrs(ctx, c, "fail.test", false)
	if de, ok := err.(*net.DNSError); !ok || !de.IsTemporary || de.IsNotFound {
		t.Errorf("servfail: %#v", err)
	}
	start := time.Now()
	if _, err := Addrs(ctx, c, "slow.test", false); !IsTimeout(err) {
		t.Errorf("no answer: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestNewClient(t *testing.T) {
	for _, s := range []string{"example.org:53", "nonsense", "1.2.3.4:x:y"} {
		if _, err := NewClient([]string{s}, "", 0); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	c, err := NewClient([]string{"::1", "127.0.0.1:5353"}, "", 0)
	if err != nil || strings.Join(c.Servers, ",") != "[::1]:53,127.0.0.1:5353" {
		t.Errorf("got %v %v", c, err)
	}
}

func TestCacheAndFake(t *testing.T) {
	f := NewFake("h.test. A 192.0.2.1", "7.2.0.192.in-addr.arpa. PTR h.test.")
	f.Slow["slow.test."] = true
	c := NewCache(f)
	ctx := context.Background()
	for range 3 {
		if as, err := Addrs(ctx, c, "H.test.", false); err != nil || len(as) != 1 {
			t.Fatalf("%v %v", as, err)
		}
	}
	if f.Queries != 1 {
		t.Errorf("%d queries for one name", f.Queries)
	}
	names, err := PTR(ctx, c, netip.MustParseAddr("192.0.2.7"))
	if err != nil || names[0] != "h.test" {
		t.Errorf("ptr: %v %v", names, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := TXT(tctx, c, "slow.test"); !IsTimeout(err) {
		t.Errorf("slow: %v", err)
	}
}
