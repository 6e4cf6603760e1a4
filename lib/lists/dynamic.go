package lists

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"mf/lib/name"
	"mf/lib/state"
	"mf/lib/verdict"
)

// Dynamic lists are block lists kept in the state store instead of a
// file: "mf-lists add", and stages that catch an abuser, add entries
// with an expiry. An entry is the key "dl|LIST|ENTRY", so all of them
// are one key family that a check reads at once.
//
// An entry is one of two things. A pattern ("192.0.2.0/24",
// "@example.org", ".example.org") is what an administrator types, read
// like a line of a list file. A value ("sender 0.0.0.0/0") is what a stage
// took from a message: the kind of value, a space, and the value, which
// matches that client address or that sender and nothing else, however
// much it looks like a pattern. A sender is a stranger's text: read as a
// pattern, MAIL FROM:<0.0.0.0/0> would block every client. A pattern has
// no blank, so the two never meet.

// DynamicTargets are what a dynamic entry can match: the client by
// address or network, the client by verified name, the sender.
var DynamicTargets = []Target{ClientAddr, ClientName, Sender}

// ValueKind is what a value a stage puts on a dynamic list was taken from,
// and so what it matches.
type ValueKind int

const (
	ValueClientAddr   ValueKind = iota // the client's address: that address
	ValueClientNet                     // the network of the client's address (a /24, a /64): addresses in it
	ValueSender                        // the envelope sender: that sender, compared without case
	ValueSenderDomain                  // the domain of the envelope sender: senders at exactly that domain
)

var valueKindNames = [...]string{"client-addr", "client-net", "sender", "sender-domain"}

func (k ValueKind) String() string { return valueKindNames[k] }

// ParseValueKind reads a kind as String writes it.
func ParseValueKind(s string) (ValueKind, bool) {
	i, ok := lookupName(valueKindNames[:], s)
	return ValueKind(i), ok
}

// A client network a stage adds is one it computed from a client
// address; one wider than these cannot have been, and would block a
// good part of the Internet.
const minNetBits4, minNetBits6 = 16, 32

// maxValueKey is the longest value kept as it is in a key; a longer one
// (a stranger's sender can be long) is kept as its hash.
const maxValueKey = 320

// DynEntry is one entry of a dynamic list.
type DynEntry struct {
	List    string    `json:"-"`
	Entry   string    `json:"-"`               // as in the key: a pattern, or "KIND VALUE"
	Value   string    `json:"value,omitempty"` // a value entry's value; in the note only when hashed in the key
	Pattern bool      `json:"pattern,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"-"` // zero: never
}

func dynKey(list, entry string) string { return DynamicFamily + list + "|" + entry }

// CheckDynamic validates a dynamic list name and pattern and returns the
// pattern as stored (IP addresses unmapped, names in lower case).
func CheckDynamic(list, entry string) (string, error) {
	if err := name.Valid(list); err != nil {
		return "", fmt.Errorf("list %w", err)
	}
	e, err := parseEntry(entry)
	if err != nil {
		return "", err
	}
	d := Def{Targets: DynamicTargets}
	if !d.fits(e) {
		return "", fmt.Errorf("%q: a dynamic list matches client addresses, client names and senders, and this is %s", entry, kindWhat(e))
	}
	if e.prefix.IsValid() {
		if e.prefix.IsSingleIP() {
			return e.prefix.Addr().String(), nil
		}
		return e.prefix.String(), nil
	}
	return strings.ToLower(entry), nil
}

// CanonicalValue returns v as a value of kind k is stored and compared:
// addresses unmapped, senders and domains in lower case. It refuses what
// a stage cannot have taken from a message: no address, a network wider
// than a /16 or /32, the null sender (every bounce is from it).
func CanonicalValue(k ValueKind, v string) (string, error) {
	switch k {
	case ValueClientAddr:
		a, ok := parseClientAddr(v)
		if !ok {
			return "", fmt.Errorf("client address %q is not an IP address", v)
		}
		return a.String(), nil
	case ValueClientNet:
		p, err := ParseNet(v)
		if err != nil {
			return "", fmt.Errorf("client network: %w", err)
		}
		if p.Addr().Is4() && p.Bits() < minNetBits4 || p.Addr().Is6() && p.Bits() < minNetBits6 {
			return "", fmt.Errorf("client network %s is wider than a /%d (IPv4) or /%d (IPv6)", p, minNetBits4, minNetBits6)
		}
		return p.String(), nil
	case ValueSender:
		if v == "" || v == "<>" {
			return "", errors.New("the null sender cannot be blocked: every bounce comes from it")
		}
		return strings.ToLower(v), nil
	case ValueSenderDomain:
		d := strings.ToLower(strings.TrimPrefix(v, "@"))
		if v == "<>" || d == "" {
			return "", errors.New("the null sender has no domain to block")
		}
		return "@" + d, nil
	}
	return "", fmt.Errorf("value kind %d", k)
}

// valueEntry is the key text of a canonical value.
func valueEntry(k ValueKind, v string) string {
	if len(v) > maxValueKey {
		h := sha256.Sum256([]byte(v))
		v = "sha256:" + hex.EncodeToString(h[:16])
	}
	return k.String() + " " + v
}

// AddDynamicValue adds (or renews) a value a stage took from a message on
// dynamic list list for ttl (0: until deleted): it matches that value as
// what kind says it is, exactly, never as a pattern.
func AddDynamicValue(ctx context.Context, st state.Store, list string, kind ValueKind, value string, ttl time.Duration, reason, by string) (DynEntry, error) {
	if err := name.Valid(list); err != nil {
		return DynEntry{}, fmt.Errorf("list %w", err)
	}
	v, err := CanonicalValue(kind, value)
	if err != nil {
		return DynEntry{}, err
	}
	d := DynEntry{List: list, Entry: valueEntry(kind, v), Value: v, Reason: reason, By: by, Added: time.Now().Truncate(time.Second)}
	return d, d.store(ctx, st, ttl)
}

func (d *DynEntry) store(ctx context.Context, st state.Store, ttl time.Duration) error {
	note := *d
	if !strings.Contains(note.Entry, " sha256:") {
		note.Value = "" // the key holds it
	}
	b, _ := json.Marshal(note)
	if err := st.Set(ctx, dynKey(d.List, d.Entry), b, ttl); err != nil {
		return err
	}
	if ttl > 0 {
		d.Expires = d.Added.Add(ttl)
	}
	return nil
}

// AddDynamic adds (or renews) the pattern entry on dynamic list list for
// ttl (0: until deleted), saying why and by whom. It is for what a person
// types; a stage adds what it took from a message with AddDynamicValue.
//
// An entry written as mf-lists show prints a value ("sender \"a b\"@x")
// is added as that value.
func AddDynamic(ctx context.Context, st state.Store, list, entry string, ttl time.Duration, reason, by string) (DynEntry, error) {
	if kw, v, ok := strings.Cut(entry, " "); ok {
		if k, ok := ParseValueKind(kw); ok {
			return AddDynamicValue(ctx, st, list, k, v, ttl, reason, by)
		}
	}
	e, err := CheckDynamic(list, entry)
	if err != nil {
		return DynEntry{}, err
	}
	d := DynEntry{List: list, Entry: e, Pattern: true, Reason: reason, By: by, Added: time.Now().Truncate(time.Second)}
	return d, d.store(ctx, st, ttl)
}

// DelDynamic removes entry from list and reports whether it was there.
// The entry is a value as mf-lists show prints it ("sender
// x@example.org"), or plain: a pattern, and the values it can be.
func DelDynamic(ctx context.Context, st state.Store, list, entry string) (bool, error) {
	if kw, v, ok := strings.Cut(entry, " "); ok {
		if k, ok := ParseValueKind(kw); ok {
			if err := name.Valid(list); err != nil {
				return false, fmt.Errorf("list %w", err)
			}
			if !strings.HasPrefix(v, "sha256:") {
				var err error
				if v, err = CanonicalValue(k, v); err != nil {
					return false, err
				}
			}
			return st.Delete(ctx, dynKey(list, valueEntry(k, v)))
		}
	}
	if err := name.Valid(list); err != nil {
		return false, fmt.Errorf("list %w", err)
	}
	// A plain entry deletes the pattern and the values it can be: the
	// administrator who types 192.0.2.9 means the address a stage
	// blocked as well.
	var keys []string
	e, perr := CheckDynamic(list, entry)
	if perr == nil {
		keys = append(keys, dynKey(list, e))
	}
	for k := range valueKindNames {
		if ValueKind(k) == ValueSenderDomain && !strings.HasPrefix(entry, "@") {
			continue
		}
		if v, err := CanonicalValue(ValueKind(k), entry); err == nil {
			keys = append(keys, dynKey(list, valueEntry(ValueKind(k), v)))
		}
	}
	if len(keys) == 0 {
		return false, perr
	}
	found := false
	for _, k := range keys {
		ok, err := st.Delete(ctx, k)
		if err != nil {
			return found, err
		}
		found = found || ok
	}
	return found, nil
}

// Dynamic returns the live entries of list, or of every dynamic list
// when list is "", by list and entry.
func Dynamic(ctx context.Context, st state.Store, list string) ([]DynEntry, error) {
	pfx := DynamicFamily
	if list != "" {
		pfx = dynKey(list, "")
	}
	es, err := st.Scan(ctx, pfx)
	if err != nil {
		return nil, err
	}
	out := make([]DynEntry, 0, len(es))
	for _, e := range es {
		list, entry, ok := strings.Cut(strings.TrimPrefix(e.Key, DynamicFamily), "|")
		if !ok {
			continue
		}
		d := DynEntry{}
		_ = json.Unmarshal(e.Value, &d) // an entry without its note still blocks
		d.List, d.Entry, d.Expires = list, entry, e.Expires
		if kw, v, ok := strings.Cut(entry, " "); ok && d.Value == "" {
			if _, ok := ParseValueKind(kw); ok {
				d.Value = v
			}
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].List < out[j].List })
	return out, nil
}

// value is what a value entry, or an entry a stage added before value
// entries had their kind (a legacy entry), matches; ok false for a
// pattern.
func (d *DynEntry) value() (k ValueKind, v string, ok bool) {
	if kw, v, ok := strings.Cut(d.Entry, " "); ok {
		k, ok := ParseValueKind(kw)
		if !ok {
			return 0, "", false
		}
		if d.Value != "" && valueEntry(k, d.Value) == d.Entry {
			v = d.Value // a long value, hashed in the key
		}
		// else a long value known by its hash alone: "sha256:..." is
		// compared as it is, and hashes to itself.
		return k, v, true
	}
	if d.Pattern || strings.HasPrefix(d.By, "mf-lists add") {
		return 0, "", false
	}
	// Before value entries, mf-quota stored the key part as it was, so
	// "0.0.0.0/0" may be a sender. Such an entry is read as the value it
	// can have been, taken as narrowly as it can be.
	e := d.Entry
	if a, ok := parseClientAddr(e); ok && !strings.Contains(e, "/") {
		return ValueClientAddr, a.String(), true
	}
	if p, err := ParseNet(e); err == nil && (p.Addr().Is4() && p.Bits() >= minNetBits4 || p.Addr().Is6() && p.Bits() >= minNetBits6) {
		return ValueClientNet, p.String(), true
	}
	if strings.HasPrefix(e, "@") && !strings.Contains(e[1:], "@") {
		return ValueSenderDomain, e, true
	}
	return ValueSender, e, true
}

// loadDynamic compiles every dynamic list into a List that blocks with
// reply (a 4xx reply tempfails), ready to be tried after the static ones,
// and says when the first of the entries read expires (zero: none does).
// Entries that no longer parse are skipped, not fatal: the store is
// shared with other versions and hosts.
func loadDynamic(ctx context.Context, st state.Store, reply verdict.Reply) (out []*List, first time.Time, err error) {
	all, err := Dynamic(ctx, st, "")
	if err != nil {
		return nil, first, err
	}
	for _, d := range all {
		if !d.Expires.IsZero() && (first.IsZero() || d.Expires.Before(first)) {
			first = d.Expires
		}
	}
	for i := 0; i < len(all); {
		j := i
		def := &Def{Name: all[i].List, Path: "dynamic:" + all[i].List, Targets: DynamicTargets, Action: Block, Reply: reply}
		if reply.Code/100 == 4 {
			def.Action = Tempblock
		}
		var entries []entry
		var texts []string
		exact := map[string]int{}
		for ; j < len(all) && all[j].List == all[i].List; j++ {
			d := &all[j]
			var e entry
			if k, v, ok := d.value(); ok {
				var err error
				if v, err = CanonicalValue(k, v); err != nil {
					continue
				}
				switch k {
				case ValueClientAddr:
					a, _ := parseClientAddr(v)
					e.prefix = netip.PrefixFrom(a, a.BitLen())
				case ValueClientNet:
					e.prefix, _ = ParseNet(v)
				default:
					texts = append(texts, d.Entry)
					exact[valueEntry(k, v)] = len(texts)
					continue
				}
			} else {
				var err error
				if e, err = parseEntry(d.Entry); err != nil {
					continue
				}
			}
			texts = append(texts, d.Entry)
			e.line = len(texts)
			entries = append(entries, e)
		}
		l, err := openImage(compile(def, entries, source{}, time.Time{}), def.Path)
		if err != nil {
			return nil, first, fmt.Errorf("dynamic list %s: %w", def.Name, err)
		}
		l.Def, l.dyn, l.exact = *def, texts, exact
		out = append(out, l)
		i = j
	}
	return out, first, nil
}

// DynamicFamily is the family (state.Family) of the dynamic lists' keys.
const DynamicFamily = "dl|"

// Dynamics are the dynamic lists as last read from a store, for the runs
// that follow: read again once an entry in them has expired. The caller
// makes a new one when the store changes (resident.GetFamily),
// so that an entry added or deleted counts at the next run: reading and
// compiling every entry at every run cost a mf-lists stage 27 ms with ten
// thousand of them.
type Dynamics struct {
	mu    sync.Mutex
	lists []*List
	read  bool
	until time.Time // when the first entry read expires; zero: none does
}

// Load gives the dynamic lists of st, each compiled into a List that
// blocks with reply (a 4xx reply tempfails), ready to be tried after the
// static ones: read at the first call and again once an entry in them
// has expired.
func (d *Dynamics) Load(ctx context.Context, st state.Store, reply verdict.Reply) ([]*List, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.read && (d.until.IsZero() || time.Now().Before(d.until)) {
		return d.lists, nil
	}
	ls, until, err := loadDynamic(ctx, st, reply)
	if err != nil {
		return nil, err
	}
	d.lists, d.until, d.read = ls, until, true
	return ls, nil
}

// matchExact looks a sender up among a dynamic list's values.
func (l *List) matchExact(v string) (int, bool) {
	if len(l.exact) == 0 {
		return 0, false // a list file, or no sender values
	}
	v = strings.ToLower(v)
	if line, ok := l.exact[valueEntry(ValueSender, v)]; ok {
		return line, true
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 && i < len(v)-1 {
		if line, ok := l.exact[valueEntry(ValueSenderDomain, v[i:])]; ok {
			return line, true
		}
	}
	return 0, false
}
