package dnsbl

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mf/lib/dns"
)

func TestLookup(t *testing.T) {
	f := dns.NewFake(
		"2.0.0.127.bl.test. A 127.0.0.2", "7.2.0.192.bl.test. A 127.0.0.4", "7.2.0.192.bl.test. TXT \"listed\x01 see\"",
		"9.2.0.192.bl.test. A 127.0.0.10",
		"2.0.0.127.bad.test. A 127.0.0.2", "1.0.0.127.bad.test. A 127.0.0.2", "7.2.0.192.bad.test. A 127.0.0.2",
		"test.rhs.test. A 127.0.1.2", "spam.example.rhs.test. A 127.0.1.2",
		"2.0.0.127.slow.test. A 127.0.0.2",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. A 127.0.0.2",
	)
	f.Slow["7.2.0.192.slow.test."] = true
	codes, _ := ParseCodes("127.0.0.2-127.0.0.4")
	bl := &Zone{Name: "bl.test", Codes: codes}
	bad := &Zone{Name: "bad.test"}
	slow := &Zone{Name: "slow.test"}
	rhs := &Zone{Name: "rhs.test", Kind: RHS}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := Lookup(ctx, f, []Ask{
		{bl, "192.0.2.7"}, {bl, "192.0.2.9"}, {bl, "192.0.2.8"}, {bl, "2001:db8::1"},
		{bad, "192.0.2.7"}, {slow, "192.0.2.7"}, {rhs, "Spam.Example"}, {rhs, "ham.example"},
	}, nil)
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("lookups took %v: not in parallel under one deadline", d)
	}
	want := []struct{ listed, healthy bool }{{true, true}, {false, true}, {false, true}, {true, true}, {false, false}, {false, false}, {true, true}, {false, true}}
	for i, w := range want {
		if res[i].Listed != w.listed || res[i].Healthy != w.healthy {
			t.Errorf("%s in %s: listed %v healthy %v, want %v %v (%v)", res[i].Key, res[i].Zone.Name, res[i].Listed, res[i].Healthy, w.listed, w.healthy, res[i].Err)
		}
	}
	// A zone with its own test entry, and one not probed at all.
	own := &Zone{Name: "rhs.test", Kind: RHS, Test: "spam.example"}
	none := &Zone{Name: "bad.test", NoProbe: true}
	if !Healthy(ctx, f, own) || !Healthy(ctx, f, none) || Healthy(ctx, f, &Zone{Name: "bad.test"}) {
		t.Error("test= or probe=no not honoured")
	}
	if res[0].Text != "listed see" {
		t.Errorf("txt %q", res[0].Text)
	}
}

func TestCodes(t *testing.T) {
	for _, bad := range []string{"10.0.0.1", "127.0.0.9-127.0.0.2", "x", "127.0.0.0/4", "127.0.0.0-127.1.0.0"} {
		if _, err := ParseCodes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c, err := ParseCodes("127.0.0.2, 127.0.1.0/24,127.0.0.10-127.0.0.11")
	if err != nil || len(c) != 4 {
		t.Fatalf("%v %v", c, err)
	}
	z := &Zone{Codes: c}
	for a, want := range map[string]bool{"127.0.0.2": true, "127.0.1.9": true, "127.0.0.11": true, "127.0.0.3": false, "10.0.0.2": false, "127.0.0.1": false} {
		if z.Counts(netip.MustParseAddr(a)) != want {
			t.Errorf("%s: want %v", a, want)
		}
	}
	m := &Zone{Mask: 4}
	if !m.Counts(netip.MustParseAddr("127.0.0.4")) || m.Counts(netip.MustParseAddr("127.0.0.2")) {
		t.Error("mask")
	}
}

func FuzzParseCodes(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "127.0.0.2-127.0.0.11", "127.0.1.0/24,127.0.0.3", "-", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseCodes(s)
		if err == nil {
			for _, p := range ps {
				if !loopback.Contains(p.Addr()) {
					t.Fatalf("%q gives %v", s, p)
				}
			}
		}
	})
}

func FuzzQuery(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "2001:db8::1", "example.org", "[192.0.2.1]", "a..b", "fe80::1%eth0"} {
		f.Add(s)
	}
	z, r := &Zone{Name: "bl.test"}, &Zone{Name: "rhs.test", Kind: RHS}
	f.Fuzz(func(t *testing.T, s string) {
		for _, zz := range []*Zone{z, r} {
			if n, err := zz.Query(s); err == nil && len(n) > 254 {
				t.Fatalf("%q: %d bytes", s, len(n))
			}
		}
	})
}

func TestHealthFile(t *testing.T) {
	f := dns.NewFake("2.0.0.127.bl.test. A 127.0.0.2", "7.2.0.192.bl.test. A 127.0.0.2",
		"2.0.0.127.bad.test. A 127.0.0.2", "1.0.0.127.bad.test. A 127.0.0.2")
	path := filepath.Join(t.TempDir(), "sub", "health")
	bl, bad := &Zone{Name: "bl.test"}, &Zone{Name: "bad.test"}
	asks := []Ask{{bl, "192.0.2.7"}, {bad, "192.0.2.7"}}
	hf := &HealthFile{Path: path, TTL: time.Minute}
	res := Lookup(context.Background(), f, asks, hf)
	if err := hf.Save(); err != nil || !res[0].Listed || res[1].Healthy {
		t.Fatalf("first: %+v %v", res, err)
	}
	n := f.Queries
	// Another process: the probes are not asked again (A and TXT of the
	// listing, A of the other).
	res = Lookup(context.Background(), f, asks, &HealthFile{Path: path, TTL: time.Minute})
	if f.Queries-n != 3 || !res[0].Listed || res[1].Healthy {
		t.Errorf("second: %d queries, %+v", f.Queries-n, res)
	}
	// Expired: the four probes are asked again.
	n = f.Queries
	Lookup(context.Background(), f, asks, &HealthFile{Path: path, TTL: time.Nanosecond})
	if f.Queries-n != 7 {
		t.Errorf("expired: %d queries", f.Queries-n)
	}
	os.WriteFile(path, []byte("garbage\nbl.test x 1\n"), 0o644)
	if _, known := (&HealthFile{Path: path, TTL: time.Minute}).Get(bl); known {
		t.Error("garbage believed")
	}
}
