package lists

import (
	"context"
	"encoding/json"
	"strings"
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
	ls, err := (&Dynamics{}).Load(ctx, st, verdict.Reply{Code: 451, Status: "4.7.1", Text: "Later"})
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

// A value a stage adds matches what it was taken from, exactly.
func TestDynamicValues(t *testing.T) {
	st, _ := state.OpenDir(t.TempDir(), time.Second)
	ctx := context.Background()
	long := strings.Repeat("l", 500) + "@example.org"
	for _, c := range []struct {
		k    ValueKind
		v    string
		want string
	}{
		{ValueSender, "0.0.0.0/0", "sender 0.0.0.0/0"},
		{ValueSender, "::/0", "sender ::/0"},
		{ValueSender, "@Gmail.com", "sender @gmail.com"},
		{ValueSender, ".gmail.com", "sender .gmail.com"},
		{ValueSender, `"a b"@example.org`, `sender "a b"@example.org`},
		{ValueSender, "a@[192.0.2.1]", "sender a@[192.0.2.1]"},
		{ValueSender, long, ""},
		{ValueSenderDomain, "@Spam.example", "sender-domain @spam.example"},
		{ValueClientAddr, "::ffff:192.0.2.7", "client-addr 192.0.2.7"},
		{ValueClientNet, "2001:db8:1::/48", "client-net 2001:db8:1::/48"},
	} {
		d, err := AddDynamicValue(ctx, st, "v", c.k, c.v, time.Hour, "why", "test")
		if err != nil || c.want != "" && d.Entry != c.want {
			t.Errorf("add %s %q: %q %v, want %q", c.k, c.v, d.Entry, err, c.want)
		}
	}
	for _, bad := range []struct {
		k ValueKind
		v string
	}{{ValueSender, ""}, {ValueSender, "<>"}, {ValueSenderDomain, "<>"}, {ValueSenderDomain, "@"}, {ValueClientAddr, "0.0.0.0/0"},
		{ValueClientAddr, "x"}, {ValueClientNet, "0.0.0.0/0"}, {ValueClientNet, "::/0"}, {ValueClientNet, "10.0.0.0/8"}, {ValueClientNet, "192.0.2.1/24"}} {
		if d, err := AddDynamicValue(ctx, st, "v", bad.k, bad.v, time.Hour, "", ""); err == nil {
			t.Errorf("%s %q accepted as %q", bad.k, bad.v, d.Entry)
		}
	}
	ls, err := (&Dynamics{}).Load(ctx, st, dynamicReply)
	if err != nil || len(ls) != 1 {
		t.Fatal(ls, err)
	}
	for _, c := range []struct {
		q   Query
		hit bool
	}{
		{Query{ClientAddr: "203.0.113.1", Sender: "x@gmail.com"}, false},
		{Query{ClientAddr: "2001:db8::1", Sender: "x@mail.gmail.com"}, false},
		{Query{ClientAddr: "192.0.2.1", Sender: "x@example.org"}, false},
		{Query{Sender: "0.0.0.0/0"}, true},
		{Query{Sender: "@GMAIL.com"}, true},
		{Query{Sender: ".gmail.com"}, true},
		{Query{Sender: `"a b"@example.org`}, true},
		{Query{Sender: "a@[192.0.2.1]"}, true},
		{Query{Sender: strings.ToUpper(long)}, true},
		{Query{Sender: "x@spam.example"}, true},
		{Query{Sender: "x@sub.spam.example"}, false},
		{Query{ClientAddr: "192.0.2.7"}, true},
		{Query{ClientAddr: "192.0.2.8"}, false},
		{Query{ClientAddr: "2001:db8:1:2::9"}, true},
		{Query{ClientName: "gmail.com"}, false},
	} {
		r := Check(ls, &c.q)
		if (r.Final != nil) != c.hit {
			t.Errorf("%+v: hit %v", c.q, r.Final)
		} else if c.hit && r.Final.Entry() == "?" {
			t.Errorf("%+v: hit names no entry", c.q)
		}
	}
	// As mf-lists show prints them, values delete.
	for _, e := range []string{"sender 0.0.0.0/0", "client-addr 192.0.2.7", "sender-domain @spam.example"} {
		if ok, err := DelDynamic(ctx, st, "v", e); !ok || err != nil {
			t.Errorf("del %q: %v %v", e, ok, err)
		}
	}
	ds, _ := Dynamic(ctx, st, "v")
	for _, d := range ds {
		if strings.HasPrefix(d.Entry, "sender sha256:") && d.Value != strings.ToLower(long) {
			t.Errorf("a long value keeps its text: %+v", d)
		}
		if ok, err := DelDynamic(ctx, st, "v", d.Entry); !ok || err != nil {
			t.Errorf("del %q: %v %v", d.Entry, ok, err)
		}
	}
}

// Entries a stage stored before values had a kind are read as the
// narrowest value they can be; entries a person added stay patterns.
func TestLegacyDynamicEntries(t *testing.T) {
	st, _ := state.OpenDir(t.TempDir(), time.Second)
	ctx := context.Background()
	old := func(entry, by string) {
		b, _ := json.Marshal(map[string]any{"by": by, "added": time.Now()})
		if err := st.Set(ctx, "dl|old|"+entry, b, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	old("0.0.0.0/0", "mf-quota")
	old("@gmail.com", "mf-quota")
	old(".gmail.com", "mf-quota")
	old("198.51.100.0/24", "mf-quota")
	old("203.0.113.9", "mf-quota")
	old("@admin.example", "mf-lists add by root")
	old(".admin.example", "mf-lists add by root")
	ls, err := (&Dynamics{}).Load(ctx, st, dynamicReply)
	if err != nil || len(ls) != 1 {
		t.Fatal(ls, err)
	}
	for _, c := range []struct {
		q   Query
		hit bool
	}{
		{Query{ClientAddr: "192.0.2.1", Sender: "a@example.org"}, false},
		{Query{Sender: "0.0.0.0/0"}, true},
		{Query{Sender: "a@gmail.com"}, true},
		{Query{Sender: "a@mail.gmail.com"}, false},
		{Query{Sender: ".gmail.com"}, true},
		{Query{ClientAddr: "198.51.100.7"}, true},
		{Query{ClientAddr: "203.0.113.9"}, true},
		{Query{Sender: "a@admin.example"}, true},
		{Query{ClientName: "mx.admin.example"}, true},
	} {
		if r := Check(ls, &c.q); (r.Final != nil) != c.hit {
			t.Errorf("%+v: hit %v", c.q, r.Final)
		}
	}
}

// An administrator deletes what a stage added by typing the value alone.
func TestDelPlainDeletesValues(t *testing.T) {
	st, _ := state.OpenDir(t.TempDir(), time.Second)
	ctx := context.Background()
	AddDynamicValue(ctx, st, "b", ValueClientAddr, "192.0.2.9", time.Hour, "", "")
	AddDynamicValue(ctx, st, "b", ValueSender, `"a b"@example.org`, time.Hour, "", "")
	AddDynamicValue(ctx, st, "b", ValueSenderDomain, "@spam.example", time.Hour, "", "")
	AddDynamic(ctx, st, "b", "@pattern.example", time.Hour, "", "")
	for _, e := range []string{"192.0.2.9", `"a b"@example.org`, "@spam.example", "@pattern.example"} {
		if ok, err := DelDynamic(ctx, st, "b", e); !ok || err != nil {
			t.Errorf("del %q: %v %v", e, ok, err)
		}
	}
	if ds, _ := Dynamic(ctx, st, "b"); len(ds) != 0 {
		t.Errorf("left: %+v", ds)
	}
	if ok, err := DelDynamic(ctx, st, "b", "192.0.2.9"); ok || err != nil {
		t.Errorf("del again: %v %v", ok, err)
	}
}

// A person adds a value as show prints it.
func TestAddValueAsShown(t *testing.T) {
	st, _ := state.OpenDir(t.TempDir(), time.Second)
	ctx := context.Background()
	d, err := AddDynamic(ctx, st, "b", `sender "a b"@example.org`, time.Hour, "", "mf-lists add by root")
	if err != nil || d.Entry != `sender "a b"@example.org` {
		t.Fatal(d, err)
	}
	if _, err := AddDynamic(ctx, st, "b", "client-net 10.0.0.0/8", time.Hour, "", ""); err == nil {
		t.Error("a /8 client-net value accepted")
	}
	ls, _ := (&Dynamics{}).Load(ctx, st, dynamicReply)
	if r := Check(ls, &Query{Sender: `"A B"@example.org`}); r.Final == nil {
		t.Error("not blocked")
	}
	if r := Check(ls, &Query{Sender: `a@example.org`}); r.Final != nil {
		t.Error("another sender blocked")
	}
}

// dynamicReply is what mf-lists answers a dynamic hit with by default.
var dynamicReply = verdict.Reply{Code: 550, Status: "5.7.1", Text: "Access denied"}
