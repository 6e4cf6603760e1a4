package lists

import (
	"context"
	"testing"
	"time"

	"mf/lib/state"
	"mf/lib/verdict"
)

func TestDynamic(t *testing.T) {
	st, err := state.OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"}, {"::ffff:192.0.2.8", "192.0.2.8"}, {"198.51.100.0/24", "198.51.100.0/24"},
		{"Spam@Example.NET", "spam@example.net"}, {"@bad.example", "@bad.example"}, {".dyn.example", ".dyn.example"},
	} {
		d, err := AddDynamic(ctx, st, "block", c.in, time.Hour, "test", "me")
		if err != nil || d.Entry != c.want {
			t.Fatalf("add %q: %q %v, want %q", c.in, d.Entry, err, c.want)
		}
	}
	for _, bad := range [][2]string{{"block", "192.0.2.0/23x"}, {"block", "192.0.2.1/24"}, {"bad name", "192.0.2.1"}, {"block", "a b"}, {"block", "*.example"}} {
		if _, err := AddDynamic(ctx, st, bad[0], bad[1], time.Hour, "", ""); err == nil {
			t.Errorf("add %q to %q accepted", bad[1], bad[0])
		}
	}
	AddDynamic(ctx, st, "slow", "203.0.113.1", 0, "", "")
	ls, err := LoadDynamic(ctx, st, verdict.Reply{Code: 451, Status: "4.7.1", Text: "Later"})
	if err != nil || len(ls) != 2 || ls[0].Name != "block" || ls[1].Name != "slow" {
		t.Fatalf("load: %v %v", ls, err)
	}
	for _, c := range []struct {
		q    Query
		hit  bool
		list string
	}{
		{Query{ClientAddr: "192.0.2.7"}, true, "block"},
		{Query{ClientAddr: "198.51.100.77"}, true, "block"},
		{Query{ClientName: "host.dyn.example"}, true, "block"},
		{Query{Sender: "x@bad.example"}, true, "block"},
		{Query{Sender: "SPAM@example.net"}, true, "block"},
		{Query{ClientAddr: "203.0.113.1"}, true, "slow"},
		{Query{ClientAddr: "192.0.2.9", Sender: "ok@example.org", Rcpts: []string{"spam@example.net"}}, false, ""},
	} {
		r := Check(ls, &c.q)
		if (r.Final != nil) != c.hit || c.hit && (r.Final.List.Name != c.list || r.Final.List.Verdict().Action != verdict.Tempfail) {
			t.Errorf("%+v: %+v", c.q, r.Final)
			continue
		}
		if c.hit && r.Final.Entry() == "?" {
			t.Errorf("%+v: hit names no entry", c.q)
		}
	}
	if ok, err := DelDynamic(ctx, st, "block", "192.0.2.7"); !ok || err != nil {
		t.Fatalf("del: %v %v", ok, err)
	}
	ds, _ := Dynamic(ctx, st, "block")
	if len(ds) != 5 || ds[0].By != "me" || ds[0].Reason != "test" || ds[0].Expires.IsZero() {
		t.Fatalf("after del: %+v", ds)
	}
}
