package mflists

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"mf/lib/cli"
	"mf/lib/lists"
	"mf/lib/state"
	"mf/lib/stream"
)

// exitNotFound is the exit status of an administrative command that found
// nothing to show or delete: not an error (75), which would look like the
// state store being down.
const exitNotFound = 1

// entryMatcher matches the entries what stands for: the entry as show
// prints it ("client-addr 192.0.2.7"), a pattern equal to it, a value a
// stage added equal to it (a sender without regard to case), and for an
// address also the networks, patterns or values, that hold it.
func entryMatcher(what string) func(lists.DynEntry) bool {
	pattern, perr := lists.CheckDynamic("x", what)
	addr, aerr := netip.ParseAddr(what)
	holds := func(v string) bool {
		p, err := netip.ParsePrefix(v)
		return aerr == nil && err == nil && p.Contains(addr.Unmap())
	}
	return func(d lists.DynEntry) bool {
		if d.Entry == what {
			return true
		}
		v := d.Entry
		if !d.Pattern {
			v = d.Value
			if v == "" {
				_, v, _ = strings.Cut(d.Entry, " ")
			}
			return strings.EqualFold(v, what) || aerr == nil && v == addr.Unmap().String() || holds(v)
		}
		return perr == nil && v == pattern || holds(v)
	}
}

// show prints the dynamic entries: all, those of the list named what, or,
// when no list has that name, those that match what as an entry (an
// address also matches the networks that hold it).
func show(env *cli.Env, st state.Store, what string) (int, error) {
	ds, err := lists.Dynamic(env.Ctx, st, "")
	if err != nil {
		return 0, err
	}
	match := func(d lists.DynEntry) bool { return true }
	if what != "" {
		isList := false
		for _, d := range ds {
			isList = isList || d.List == what
		}
		if isList {
			match = func(d lists.DynEntry) bool { return d.List == what }
		} else {
			match = entryMatcher(what)
		}
	}
	n := 0
	for _, d := range ds {
		if !match(d) {
			continue
		}
		n++
		fmt.Fprintf(env.Stdout, "%s\t%s\t%s\tadded %s by %s\t%s\n", d.List, stream.Encode(d.Entry), expiry(d.Expires),
			d.Added.UTC().Format(time.RFC3339), stream.Encode(d.By), stream.Encode(d.Reason))
	}
	if n == 0 && what != "" {
		env.Log.Warnf("no dynamic list %s, and no dynamic entry matches it", what)
		return exitNotFound, nil
	}
	return 0, nil
}
