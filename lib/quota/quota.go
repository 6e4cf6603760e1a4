package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"mf/lib/lists"
	"mf/lib/state"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Options are the settings beside the rules.
type Options struct {
	ExemptNets    []netip.Prefix // clients no rule counts
	ExemptSenders []string       // senders no rule counts: "a@example.org" or "@example.org"
	ExemptAuth    bool           // authenticated senders are counted only by auth-user rules
	LocalNets     []netip.Prefix // with authenticated senders, may use the reserve
	DryRun        bool           // every rule only logs
	Concurrency   int            // messages in the data stage at once; 0 no limit
	ConcReserve   int            // of those, slots only trusted senders may take
	SlotTTL       time.Duration  // a slot not released ends after this
	BusyReply     verdict.Reply
}

// Engine evaluates rules against the shared store.
type Engine struct {
	St    state.Store
	Rules []*Rule
	Opt   Options
	Now   func() time.Time
}

// Msg is what one run of a stage knows about the transaction.
type Msg struct {
	Phase    stream.Phase // rcpt or data count; other phases pass
	QueueID  string
	Client   string
	Sender   string // "" is the null sender
	AuthUser string
	Rcpts    []string // the recipients decided on now
	Size     int64    // message bytes, at data
}

// Outcome is the decision and what led to it.
type Outcome struct {
	Verdict verdict.Verdict
	Rule    *Rule  // the rule that decided, nil for none
	Key     string // its key value
	Limit   Limit
	Count   float64  // the count that passed the limit
	Blocked string   // entry put on a dynamic list, if any
	Notes   []string // what a log should say: dry-run hits, failed blocks
	Exempt  string   // why no rule counted the message
}

// undo is what a run added, to take back if the message is refused.
type undo struct {
	counters map[string]added
	seen     []string
}

type added struct {
	n   int64
	ttl time.Duration
}

// Check counts m against every rule that counts at m's stage and decides.
// A refused message is not counted: what it added is taken back, so a
// sender kept below the limit by refusals gets through once the window
// moves on. Nor is a message Check fails on (the store is full or gone):
// the MTA tries it again later, and it is counted then.
func (e *Engine) Check(ctx context.Context, m Msg) (Outcome, error) {
	out := Outcome{Verdict: verdict.Verdict{Action: verdict.Continue}}
	if m.Phase != stream.Rcpt && m.Phase != stream.Data {
		return out, nil
	}
	if out.Exempt = e.exempt(m); out.Exempt != "" {
		return out, nil
	}
	trusted := m.AuthUser != "" || inNets(m.Client, e.Opt.LocalNets)
	now := e.now()
	u := undo{counters: map[string]added{}}
	// fail takes back what this run added before it returns err; the
	// undo runs even when ctx has been cancelled.
	fail := func(err error, pending ...*undo) (Outcome, error) {
		for _, p := range append(pending, &u) {
			if uerr := e.undo(context.WithoutCancel(ctx), p); uerr != nil {
				return out, fmt.Errorf("%w; and what the message added was not taken back: %v", err, uerr)
			}
		}
		return out, err
	}
	for _, r := range e.Rules {
		if !counts(r, m.Phase) || e.Opt.ExemptAuth && m.AuthUser != "" && !hasPart(r, AuthUser) {
			continue
		}
		for _, kv := range keyValues(r, m) {
			ru := undo{counters: map[string]added{}}
			n, err := e.newUnits(ctx, r, kv, m, &ru)
			if err != nil {
				return fail(err, &ru)
			}
			if n == 0 {
				continue
			}
			over, lim, count, err := e.add(ctx, r, kv.value, n, trusted, now, &ru)
			if err != nil {
				return fail(err, &ru)
			}
			if !over {
				u.merge(ru)
				continue
			}
			if err := e.undo(ctx, &ru); err != nil {
				return fail(err, &ru)
			}
			if r.DryRun || e.Opt.DryRun {
				out.Notes = append(out.Notes, fmt.Sprintf("dry-run: would %s: rule %s key %s: %.0f > %s", r.Action, r.Name, kv.value, count, lim))
				continue
			}
			if err := e.undo(ctx, &u); err != nil {
				return fail(err)
			}
			out.Verdict = verdict.New(r.Action, r.Reply)
			out.Rule, out.Key, out.Limit, out.Count = r, kv.value, lim, count
			if r.Block != "" {
				// The key part is put on the list as the value it is,
				// typed by what it was taken from: a sender that reads
				// like a pattern (MAIL FROM:<0.0.0.0/0>) blocks that
				// sender, not everyone.
				i := blockPart(r)
				ent := kv.parts[i]
				reason := fmt.Sprintf("quota rule %s: %s %s over %s", r.Name, r.Count, kv.value, lim)
				if d, err := lists.AddDynamicValue(ctx, e.St, r.Block, valueKind(r.Key[i]), ent, r.For, reason, "mf-quota"); err != nil {
					out.Notes = append(out.Notes, fmt.Sprintf("not blocked: %s: %v", ent, err))
				} else {
					out.Blocked = d.Entry
				}
			}
			return out, nil
		}
	}
	if m.Phase == stream.Data && e.Opt.Concurrency > 0 && m.QueueID != "" {
		limit := e.Opt.Concurrency
		if !trusted {
			limit -= e.Opt.ConcReserve
		}
		ok, n, err := e.St.Lease(ctx, "conc", m.QueueID, limit, e.Opt.SlotTTL)
		if err != nil {
			return fail(err)
		}
		if !ok {
			if err := e.undo(ctx, &u); err != nil {
				return fail(err)
			}
			out.Verdict = verdict.New(verdict.Tempfail, e.Opt.BusyReply)
			out.Key, out.Count, out.Limit = "concurrency", float64(n), Limit{N: int64(limit)}
			return out, nil
		}
	}
	return out, nil
}

// valueKind is what a dynamic list entry made from key part p matches.
func valueKind(p Part) lists.ValueKind {
	switch p {
	case Client:
		return lists.ValueClientAddr
	case ClientNet:
		return lists.ValueClientNet
	case SenderDomain:
		return lists.ValueSenderDomain
	}
	return lists.ValueSender
}

// Release ends the concurrency slot of a message.
func (e *Engine) Release(ctx context.Context, queueID string) error {
	return e.St.Release(ctx, "conc", queueID)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (u *undo) merge(o undo) {
	for k, a := range o.counters {
		u.counters[k] = added{u.counters[k].n + a.n, a.ttl}
	}
	u.seen = append(u.seen, o.seen...)
}

// undo takes back what u holds, dropping from u what it took back, so
// that an undo cut short by an error can be run again for the rest.
func (e *Engine) undo(ctx context.Context, u *undo) error {
	for k, a := range u.counters {
		if _, err := e.St.Add(ctx, k, -a.n, a.ttl); err != nil {
			return err
		}
		delete(u.counters, k)
	}
	for len(u.seen) > 0 {
		if _, err := e.St.Delete(ctx, u.seen[0]); err != nil {
			return err
		}
		u.seen = u.seen[1:]
	}
	return nil
}

func (e *Engine) exempt(m Msg) string {
	if inNets(m.Client, e.Opt.ExemptNets) {
		return "client " + m.Client
	}
	s := strings.ToLower(m.Sender)
	for _, x := range e.Opt.ExemptSenders {
		x = strings.ToLower(x)
		if s != "" && (s == x || strings.HasPrefix(x, "@") && strings.HasSuffix(s, x)) {
			return "sender " + m.Sender
		}
	}
	return ""
}

func inNets(addr string, nets []netip.Prefix) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// counts reports whether r counts at stage: recipients as they come at
// rcpt (and at data those not counted then), messages and bytes at data.
func counts(r *Rule, phase stream.Phase) bool { return phase == stream.Data || r.Count == Recipients }

func hasPart(r *Rule, p Part) bool {
	for _, q := range r.Key {
		if q == p {
			return true
		}
	}
	return false
}

type keyValue struct {
	value string
	parts []string
	rcpts []string // the recipients counted under this key
}

// keyValues are the keys m is counted under by r: one, or one per
// recipient when the key names the recipient. A key that cannot be
// formed (no client address, no AUTH user) means r does not apply.
func keyValues(r *Rule, m Msg) []keyValue {
	fixed := make([]string, len(r.Key))
	perRcpt := false
	for i, p := range r.Key {
		var v string
		switch p {
		case Any:
			v = "*"
		case Client, ClientNet:
			a, err := netip.ParseAddr(m.Client)
			if err != nil {
				return nil
			}
			a = a.Unmap().WithZone("")
			v = a.String()
			if p == ClientNet {
				bits := 24
				if a.Is6() {
					bits = 64
				}
				v = netip.PrefixFrom(a, bits).Masked().String()
			}
		case Sender:
			v = addrOrNull(m.Sender)
		case SenderDomain:
			v = domainOrNull(m.Sender)
		case AuthUser:
			if m.AuthUser == "" {
				return nil
			}
			v = m.AuthUser
		case Rcpt, RcptDomain:
			perRcpt = true
		}
		fixed[i] = v
	}
	if !perRcpt {
		return []keyValue{{strings.Join(fixed, "+"), fixed, m.Rcpts}}
	}
	var out []keyValue
	for _, rc := range m.Rcpts {
		parts := append([]string(nil), fixed...)
		for i, p := range r.Key {
			switch p {
			case Rcpt:
				parts[i] = addrOrNull(rc)
			case RcptDomain:
				parts[i] = domainOrNull(rc)
			}
		}
		out = append(out, keyValue{strings.Join(parts, "+"), parts, []string{rc}})
	}
	return out
}

func addrOrNull(a string) string {
	if a == "" {
		return "<>"
	}
	return strings.ToLower(a)
}

func domainOrNull(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return "@" + strings.ToLower(a[i+1:])
	}
	return "<>"
}

// newUnits counts what m adds under kv that this transaction has not
// added before. The transaction is the queue ID, client and sender: a
// message passed through the chain twice, or recipients counted at rcpt
// and seen again at data, are counted once. Without a queue ID every run
// counts.
func (e *Engine) newUnits(ctx context.Context, r *Rule, kv keyValue, m Msg, u *undo) (int64, error) {
	var ids []string
	var each int64 = 1
	switch r.Count {
	case Messages:
		ids = []string{"message"}
	case Bytes:
		ids, each = []string{"bytes"}, m.Size
	case Recipients:
		ids = kv.rcpts
	}
	if m.QueueID == "" {
		return each * int64(len(ids)), nil
	}
	var longest time.Duration
	for _, l := range r.Limits {
		longest = max(longest, l.Per)
	}
	var n int64
	for _, id := range ids {
		h := sha256.Sum256([]byte(strings.Join([]string{r.Name, kv.value, m.QueueID, m.Client, m.Sender, id}, "\x00")))
		k := "s:" + hex.EncodeToString(h[:12])
		ok, err := e.St.SetNX(ctx, k, nil, longest)
		if err != nil {
			return 0, err
		}
		if ok {
			n += each
			u.seen = append(u.seen, k)
		}
	}
	return n, nil
}

var keyEscaper = strings.NewReplacer("%", "%25", " ", "%20")

// counterKey names the counter of rule, key value, window and bucket
// (the window's start in units of its length).
func counterKey(rule, kv string, per time.Duration, bucket int64) string {
	return fmt.Sprintf("q:%s %s %d %d", rule, keyEscaper.Replace(shortKey(kv)), int64(per/time.Second), bucket)
}

// shortKey bounds what a stranger's envelope can make a key: a key value
// longer than any real address is kept as its hash.
func shortKey(kv string) string {
	if len(kv) <= 320 {
		return kv
	}
	h := sha256.Sum256([]byte(kv))
	return "sha256:" + hex.EncodeToString(h[:16])
}

// add counts n under every window of r and reports the first limit it
// passes. A sliding window is estimated from the current and the previous
// fixed window, the previous weighted by how much of it still lies inside
// the sliding one.
func (e *Engine) add(ctx context.Context, r *Rule, kv string, n int64, trusted bool, now time.Time, u *undo) (bool, Limit, float64, error) {
	over := false
	var first Limit
	var firstCount float64
	for _, l := range r.Limits {
		ms := l.Per.Milliseconds()
		b := now.UnixMilli() / ms
		k := counterKey(r.Name, kv, l.Per, b)
		v, err := e.St.Add(ctx, k, n, 2*l.Per)
		if err != nil {
			return false, Limit{}, 0, err
		}
		u.counters[k] = added{u.counters[k].n + n, 2 * l.Per}
		count := float64(v)
		if r.Sliding {
			p, err := e.get(ctx, counterKey(r.Name, kv, l.Per, b-1))
			if err != nil {
				return false, Limit{}, 0, err
			}
			count += float64(p) * (1 - float64(now.UnixMilli()%ms)/float64(ms))
		}
		limit := l.N
		if !trusted {
			limit -= r.Reserve
		}
		if count > float64(limit) && !over {
			over, first, firstCount = true, Limit{limit, l.Per}, count
		}
	}
	return over, first, firstCount, nil
}

func (e *Engine) get(ctx context.Context, k string) (int64, error) {
	en, ok, err := e.St.Get(ctx, k)
	if err != nil || !ok {
		return 0, err
	}
	return strconv.ParseInt(string(en.Value), 10, 64)
}

// Counter is one line of "mf-quota show".
type Counter struct {
	Rule   *Rule
	Key    string
	Limit  Limit
	Count  float64
	Resets time.Time // when the current fixed window ends
}

// Show returns the current count of every rule, key and window that has
// one; with key set, only those whose key value or one of its parts is
// key.
func (e *Engine) Show(ctx context.Context, key string) ([]Counter, error) {
	es, err := e.St.Scan(ctx, "q:")
	if err != nil {
		return nil, err
	}
	now := e.now()
	type id struct {
		rule, kv string
		per      time.Duration
	}
	seen := map[id]bool{}
	var out []Counter
	for _, en := range es {
		f := strings.Fields(strings.TrimPrefix(en.Key, "q:"))
		if len(f) != 4 {
			continue
		}
		r := e.rule(f[0])
		secs, _ := strconv.ParseInt(f[2], 10, 64)
		kv := unescape(f[1])
		k := id{f[0], kv, time.Duration(secs) * time.Second}
		if r == nil || seen[k] || !matchKey(kv, key) {
			continue
		}
		seen[k] = true
		ms := k.per.Milliseconds()
		b := now.UnixMilli() / ms
		cur, err := e.get(ctx, counterKey(r.Name, kv, k.per, b))
		if err != nil {
			return nil, err
		}
		count := float64(cur)
		if r.Sliding {
			p, err := e.get(ctx, counterKey(r.Name, kv, k.per, b-1))
			if err != nil {
				return nil, err
			}
			count += float64(p) * (1 - float64(now.UnixMilli()%ms)/float64(ms))
		}
		var lim Limit
		for _, l := range r.Limits {
			if l.Per == k.per {
				lim = l
			}
		}
		if lim.Per == 0 {
			continue // the rule's windows changed since
		}
		out = append(out, Counter{r, kv, lim, count, time.UnixMilli((b + 1) * ms)})
	}
	return out, nil
}

// Reset deletes every counter of key (as Show matches it) and says how
// many it deleted.
func (e *Engine) Reset(ctx context.Context, key string) (int, error) {
	es, err := e.St.Scan(ctx, "q:")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, en := range es {
		f := strings.Fields(strings.TrimPrefix(en.Key, "q:"))
		if len(f) == 4 && matchKey(unescape(f[1]), key) {
			if ok, err := e.St.Delete(ctx, en.Key); err != nil {
				return n, err
			} else if ok {
				n++
			}
		}
	}
	return n, nil
}

func (e *Engine) rule(name string) *Rule {
	for _, r := range e.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func matchKey(kv, key string) bool {
	if key == "" || strings.EqualFold(kv, key) {
		return true
	}
	for _, p := range strings.Split(kv, "+") {
		if strings.EqualFold(p, key) {
			return true
		}
	}
	return false
}

func unescape(s string) string {
	return strings.NewReplacer("%20", " ", "%25", "%").Replace(s)
}
