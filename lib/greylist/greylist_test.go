package greylist

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"mf/lib/state"
)

func TestGreylist(t *testing.T) {
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	opt := Defaults
	opt.AutoAllow = 2
	l := &List{St: st, Opt: opt, Now: func() time.Time { return now }}
	ctx := context.Background()
	tp := l.TupleOf(netip.MustParseAddr("192.0.2.7"), "Bob@Example.org", "alice@example.test")
	if tp.String() != "192.0.2.0/24 bob@example.org alice@example.test" {
		t.Fatalf("tuple %s", tp)
	}
	step := func(d time.Duration, want Status) {
		t.Helper()
		now = now.Add(d)
		got, _, err := l.Check(ctx, tp, false)
		if err != nil || got != want {
			t.Fatalf("after %v: %v %v, want %v", d, got, err, want)
		}
	}
	step(0, New)
	step(time.Minute, Early)
	step(5*time.Minute, Passed)
	step(time.Hour, Allowed)
	// A retry after the window is a new first attempt.
	tp2 := l.TupleOf(netip.MustParseAddr("192.0.2.8"), "carol@example.org", "alice@example.test")
	if s, _, _ := l.Check(ctx, tp2, false); s != New {
		t.Fatalf("tp2 %v", s)
	}
	now = now.Add(25 * time.Hour)
	if s, _, _ := l.Check(ctx, tp2, false); s != New {
		t.Fatalf("tp2 after the window %v", s)
	}
	// Released: the next retry passes at once.
	if err := l.Release(ctx, tp2); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := l.Check(ctx, tp2, false); s != Release {
		t.Fatalf("released %v", s)
	}
	// Two tuples of the network passed: the whole network is allowed.
	tp3 := l.TupleOf(netip.MustParseAddr("192.0.2.200"), "dave@example.org", "x@example.test")
	if s, _, _ := l.Check(ctx, tp3, false); s != Client {
		t.Fatalf("auto-allowed client %v", s)
	}
	// Dry run writes nothing.
	tp4 := l.TupleOf(netip.MustParseAddr("2001:db8:1:2:3::1"), "", "x@example.test")
	if tp4.String() != "2001:db8:1:2::/64 <> x@example.test" {
		t.Fatalf("v6 tuple %s", tp4)
	}
	for range 2 {
		if s, _, _ := l.Check(ctx, tp4, true); s != New {
			t.Fatalf("dry %v", s)
		}
	}
	es, err := l.Show(ctx, "")
	if err != nil || len(es) != 3 {
		t.Fatalf("show: %v %v", es, err)
	}
	if err := l.Release(ctx, tp4); err == nil {
		t.Fatal("released an unknown tuple")
	}
	back, err := ParseTuple(tp.String())
	if err != nil || back != tp {
		t.Fatalf("parse %v %v", back, err)
	}
}

func FuzzParseTuple(f *testing.F) {
	f.Add("192.0.2.0/24 bob@example.org alice@example.test")
	f.Add("2001:db8::/64 <> a%20b@x")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTuple(s)
		if err != nil {
			return
		}
		again, err := ParseTuple(tp.String())
		if err != nil || again != tp {
			t.Fatalf("%q -> %q -> %v %v", s, tp.String(), again, err)
		}
	})
}

// TestExpiry uses the store's own clock: an allowed tuple not used for
// Expiry is gone, and its next attempt is a first one again.
func TestExpiry(t *testing.T) {
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	opt := Defaults
	opt.Delay, opt.Expiry, opt.AutoAllow = 0, time.Second, 0
	l := &List{St: st, Opt: opt}
	ctx := context.Background()
	tp := l.TupleOf(netip.MustParseAddr("192.0.2.7"), "a@example.org", "b@example.test")
	for _, want := range []Status{New, Passed, Allowed} {
		if s, _, err := l.Check(ctx, tp, false); s != want || err != nil {
			t.Fatalf("%v %v, want %v", s, err, want)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if s, _, _ := l.Check(ctx, tp, false); s != New {
		t.Fatalf("after expiry: %v", s)
	}
}
