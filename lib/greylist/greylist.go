// Package greylist refuses the first attempt of an unknown (client
// network, sender, recipient) tuple for a while and lets its retry
// through, keeping the tuples in the state store that short-lived stage
// processes share.
package greylist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"mf/lib/state"
)

// Options tune the greylist.
type Options struct {
	Delay     time.Duration // a retry sooner than this after the first attempt is refused again
	Window    time.Duration // a retry later than this counts as a first attempt
	Expiry    time.Duration // a tuple that passed stays allowed this long after its last use
	AutoAllow int           // a client network whose tuples passed this many times is allowed whole (0: never)
	V4Mask    int           // client network of a tuple: /24
	V6Mask    int           // and /64
}

// Defaults are postgrey's, with a shorter delay.
var Defaults = Options{Delay: 5 * time.Minute, Window: 24 * time.Hour, Expiry: 35 * 24 * time.Hour, AutoAllow: 5, V4Mask: 24, V6Mask: 64}

// List is a greylist over a store.
type List struct {
	St  state.Store
	Opt Options
	Now func() time.Time // nil: time.Now
}

// Status is what the greylist says about an attempt.
type Status int

const (
	New     Status = iota // first attempt: refuse
	Early                 // a retry before the delay: refuse
	Passed                // the retry after the delay: take, the tuple is now allowed
	Allowed               // a known tuple: take
	Client                // the client network is auto-allowed: take
	Release               // released by hand: take, the tuple is now allowed
)

func (s Status) String() string {
	return [...]string{"new", "early", "passed", "allowed", "client-allowed", "released"}[s]
}

// Pass reports whether the attempt is taken.
func (s Status) Pass() bool { return s >= Passed }

// Tuple is one greylisting key.
type Tuple struct {
	Net    netip.Prefix
	Sender string
	Rcpt   string
}

// TupleOf masks the client address to its network.
func (l *List) TupleOf(client netip.Addr, sender, rcpt string) Tuple {
	bits := l.Opt.V4Mask
	if client = client.Unmap(); client.Is6() {
		bits = l.Opt.V6Mask
	}
	p, _ := client.WithZone("").Prefix(bits)
	return Tuple{Net: p, Sender: strings.ToLower(sender), Rcpt: strings.ToLower(rcpt)}
}

// String is the tuple as mf-accept greylist show prints it and release
// takes it: "192.0.2.0/24 sender@example.org rcpt@example.test", <> for the
// null sender.
func (t Tuple) String() string {
	s := t.Sender
	if s == "" {
		s = "<>"
	}
	return t.Net.String() + " " + escape(s) + " " + escape(t.Rcpt)
}

// ParseTuple reads a tuple as String writes it.
func ParseTuple(s string) (Tuple, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Tuple{}, fmt.Errorf("tuple %q: want NETWORK SENDER RECIPIENT", s)
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil || p != p.Masked() {
		return Tuple{}, fmt.Errorf("tuple %q: %q is not a network as shown", s, f[0])
	}
	snd, rcpt := unescape(f[1]), unescape(f[2])
	if snd == "<>" {
		snd = ""
	}
	return Tuple{Net: p, Sender: short(strings.ToLower(snd)), Rcpt: short(strings.ToLower(rcpt))}, nil
}

// short is an address as a key keeps it: one longer than any real one as
// its hash, so a tuple read back is the tuple it was written from.
func short(s string) string {
	if len(s) > 320 {
		h := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(h[:16])
	}
	return s
}

// escape makes a stranger's address one word of a key: bytes that are
// not printable, a space and % as %XX; an address longer than any real
// one as its hash.
func escape(s string) string {
	s = short(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

const (
	tuplePrefix  = "gl:t "
	clientPrefix = "gl:c "
)

// record is a tuple's entry: "first last passes released allowed", the
// times in Unix milliseconds (a delay of seconds must not round).
type record struct {
	first, last time.Time
	passes      int
	released    bool
	allowed     bool
}

func (r record) encode() []byte {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return fmt.Appendf(nil, "%d %d %d %d %d", r.first.UnixMilli(), r.last.UnixMilli(), r.passes, b(r.released), b(r.allowed))
}

func decode(v []byte) (record, bool) {
	f := strings.Fields(string(v))
	if len(f) != 5 {
		return record{}, false
	}
	var n [5]int64
	for i, s := range f {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return record{}, false
		}
		n[i] = x
	}
	return record{time.UnixMilli(n[0]), time.UnixMilli(n[1]), int(n[2]), n[3] == 1, n[4] == 1}, true
}

func (l *List) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Check decides on an attempt for t and, unless dry, records it.
func (l *List) Check(ctx context.Context, t Tuple, dry bool) (Status, time.Duration, error) {
	now := l.now()
	if l.Opt.AutoAllow > 0 {
		n, err := l.count(ctx, t.Net)
		if err != nil {
			return 0, 0, err
		}
		if n >= int64(l.Opt.AutoAllow) {
			return Client, 0, nil
		}
	}
	key := tuplePrefix + t.String()
	en, ok, err := l.St.Get(ctx, key)
	if err != nil {
		return 0, 0, err
	}
	r, good := decode(en.Value)
	if !ok || !good || !r.allowed && !r.released && now.Sub(r.first) > l.Opt.Window {
		if dry {
			return New, l.Opt.Delay, nil
		}
		r = record{first: now, last: now}
		return New, l.Opt.Delay, l.St.Set(ctx, key, r.encode(), l.Opt.Window)
	}
	st := Allowed
	switch {
	case r.allowed:
	case r.released:
		st = Release
	case now.Sub(r.first) < l.Opt.Delay:
		if !dry {
			r.last = now
			err = l.St.Set(ctx, key, r.encode(), time.Until(r.first.Add(l.Opt.Window)))
		}
		return Early, r.first.Add(l.Opt.Delay).Sub(now), err
	default:
		st = Passed
	}
	if dry {
		return st, 0, nil
	}
	if st != Allowed {
		if _, err := l.St.Add(ctx, clientPrefix+t.Net.String(), 1, l.Opt.Expiry); err != nil {
			return 0, 0, err
		}
	}
	r.allowed, r.released, r.last = true, false, now
	r.passes++
	return st, 0, l.St.Set(ctx, key, r.encode(), l.Opt.Expiry)
}

func (l *List) count(ctx context.Context, n netip.Prefix) (int64, error) {
	en, ok, err := l.St.Get(ctx, clientPrefix+n.String())
	if err != nil || !ok {
		return 0, err
	}
	v, _ := strconv.ParseInt(string(en.Value), 10, 64)
	return v, nil
}

// Entry is one line of mf-accept greylist show.
type Entry struct {
	Tuple    string
	First    time.Time
	Last     time.Time
	Passes   int
	Allowed  bool
	Released bool
	Expires  time.Time
	Client   bool // an auto-allow count of a client network: Tuple is the network, Passes the count
}

// Show lists the tuples and client counts whose text matches pattern (a
// shell pattern, or a substring; "" for all).
func (l *List) Show(ctx context.Context, pattern string) ([]Entry, error) {
	es, err := l.St.Scan(ctx, "gl:")
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range es {
		var x Entry
		if t, ok := strings.CutPrefix(e.Key, tuplePrefix); ok {
			r, good := decode(e.Value)
			if !good {
				continue
			}
			x = Entry{Tuple: t, First: r.first, Last: r.last, Passes: r.passes, Allowed: r.allowed, Released: r.released, Expires: e.Expires}
		} else if n, ok := strings.CutPrefix(e.Key, clientPrefix); ok {
			v, _ := strconv.Atoi(string(e.Value))
			x = Entry{Tuple: n, Passes: v, Client: true, Expires: e.Expires, Allowed: l.Opt.AutoAllow > 0 && v >= l.Opt.AutoAllow}
		} else {
			continue
		}
		if pattern != "" && !strings.Contains(x.Tuple, pattern) {
			if m, _ := path.Match(pattern, x.Tuple); !m {
				continue
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// Release lets the next retry of a known tuple through at once.
func (l *List) Release(ctx context.Context, t Tuple) error {
	key := tuplePrefix + t.String()
	en, ok, err := l.St.Get(ctx, key)
	if err != nil {
		return err
	}
	r, good := decode(en.Value)
	if !ok || !good {
		return fmt.Errorf("no greylisted tuple %s", t)
	}
	r.released = true
	return l.St.Set(ctx, key, r.encode(), max(l.Opt.Window, time.Until(en.Expires)))
}
