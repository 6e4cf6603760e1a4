// Package quota counts mail per client, sender, user or recipient in time
// windows kept in the state store, and says when a rule's limit is passed.
package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mf/lib/config"
	"mf/lib/name"
	"mf/lib/verdict"
)

// Part is one component of a rule's key.
type Part int

const (
	Any          Part = iota // one key for the whole server
	Client                   // client IP address
	ClientNet                // client /24 (IPv4) or /64 (IPv6)
	Sender                   // envelope sender
	SenderDomain             // domain of the envelope sender
	AuthUser                 // SMTP AUTH user
	Rcpt                     // envelope recipient
	RcptDomain               // domain of the envelope recipient
)

var partNames = [...]string{"any", "client", "client-net", "sender", "sender-domain", "auth-user", "rcpt", "rcpt-domain"}

func (p Part) String() string { return partNames[p] }

// Unit is what a rule counts.
type Unit int

const (
	Messages Unit = iota
	Recipients
	Bytes
)

var unitNames = [...]string{"messages", "recipients", "bytes"}

func (u Unit) String() string { return unitNames[u] }

// Limit is at most N units per Per.
type Limit struct {
	N   int64
	Per time.Duration
}

func (l Limit) String() string { return fmt.Sprintf("%d/%s", l.N, FormatDuration(l.Per)) }

// Rule is one quota.rule line.
type Rule struct {
	Name    string
	Key     []Part
	Count   Unit
	Limits  []Limit
	Sliding bool
	Action  verdict.Action // Tempfail or Reject
	Reply   verdict.Reply
	Block   string        // dynamic list the key goes on, "" for none
	For     time.Duration // how long it stays there
	Reserve int64         // units of an "any" limit kept for trusted senders
	DryRun  bool
	Text    string // the line as written
}

// KeyName is the rule's key as written: "sender", "client+rcpt".
func (r *Rule) KeyName() string {
	s := make([]string, len(r.Key))
	for i, p := range r.Key {
		s[i] = p.String()
	}
	return strings.Join(s, "+")
}

// ParseRule reads a rule: a name, then key=value options.
//
//	per-sender key=sender limit=30/1m,500/1d count=messages action=tempfail reply="451 4.7.1 Too much mail"
func ParseRule(s string) (*Rule, error) {
	words, err := config.Words(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty rule")
	}
	r := &Rule{Name: words[0], Sliding: true, Action: verdict.Tempfail, For: time.Hour, Text: s}
	if err := name.Valid(r.Name); err != nil {
		return nil, fmt.Errorf("rule %w", err)
	}
	seen := map[string]bool{}
	var reply string
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if w == "dry-run" {
			k, v, ok = "dry-run", "yes", true
		}
		if !ok {
			return nil, fmt.Errorf("%q: options are key=value", w)
		}
		if seen[k] {
			return nil, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "key":
			for _, p := range strings.Split(v, "+") {
				i, ok := lookup(partNames[:], p)
				if !ok {
					return nil, fmt.Errorf("key %q: one of %s, joined by '+'", p, strings.Join(partNames[:], ", "))
				}
				r.Key = append(r.Key, Part(i))
			}
		case "limit":
			for _, l := range strings.Split(v, ",") {
				lim, err := parseLimit(l)
				if err != nil {
					return nil, err
				}
				r.Limits = append(r.Limits, lim)
			}
		case "count":
			i, ok := lookup(unitNames[:], v)
			if !ok {
				return nil, fmt.Errorf("count %q: one of messages, recipients, bytes", v)
			}
			r.Count = Unit(i)
		case "window":
			switch v {
			case "sliding":
				r.Sliding = true
			case "fixed":
				r.Sliding = false
			default:
				return nil, fmt.Errorf("window %q: sliding or fixed", v)
			}
		case "action":
			switch {
			case v == "tempfail":
				r.Action = verdict.Tempfail
			case v == "reject":
				r.Action = verdict.Reject
			case v == "block" || strings.HasPrefix(v, "block:"):
				r.Action, r.Block = verdict.Reject, "block"
				if name, ok := strings.CutPrefix(v, "block:"); ok {
					r.Block = name
				}
				if err := name.Valid(r.Block); err != nil {
					return nil, fmt.Errorf("action %s: list %w", v, err)
				}
			default:
				return nil, fmt.Errorf("action %q: tempfail, reject, or block[:LIST]", v)
			}
		case "for":
			d, err := ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("for: %w", err)
			}
			r.For = d
		case "reply":
			reply = v
		case "reserve":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("reserve %q: a count of units", v)
			}
			r.Reserve = n
		case "dry-run":
			if v != "yes" && v != "no" {
				return nil, fmt.Errorf("dry-run %q: yes or no", v)
			}
			r.DryRun = v == "yes"
		default:
			return nil, fmt.Errorf("unknown option %q", k)
		}
	}
	if len(r.Key) == 0 {
		return nil, errors.New("no key= (what to count by)")
	}
	if len(r.Limits) == 0 {
		return nil, errors.New("no limit= (N/DURATION, several joined by ',')")
	}
	if r.Reserve > 0 && (len(r.Key) != 1 || r.Key[0] != Any) {
		return nil, errors.New("reserve= is for key=any rules, the server-wide ones")
	}
	if r.Block != "" && blockPart(r) < 0 {
		return nil, fmt.Errorf("action=block needs a key a list can match (client, client-net, sender or sender-domain), not %s", r.KeyName())
	}
	if seen["for"] && r.Block == "" {
		return nil, errors.New("for= is for action=block")
	}
	if reply == "" {
		r.Reply = verdict.DefaultTempfail
		if r.Action == verdict.Reject {
			r.Reply = verdict.DefaultReject
		}
		return r, nil
	}
	rep, err := verdict.ParseReply(reply)
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	switch {
	case r.Block != "" && (rep.Code/100 == 4 || rep.Code/100 == 5):
		r.Action = verdict.Tempfail
		if rep.Code/100 == 5 {
			r.Action = verdict.Reject
		}
	case r.Action == verdict.Tempfail && rep.Code/100 != 4:
		return nil, fmt.Errorf("reply %q: tempfail needs a 4xx reply", reply)
	case r.Action == verdict.Reject && rep.Code/100 != 5:
		return nil, fmt.Errorf("reply %q: reject needs a 5xx reply", reply)
	}
	r.Reply = rep
	return r, nil
}

// blockPart is the index of the first part of r's key a dynamic list can
// match, or -1.
func blockPart(r *Rule) int {
	for i, p := range r.Key {
		switch p {
		case Client, ClientNet, Sender, SenderDomain:
			return i
		}
	}
	return -1
}

func lookup(names []string, w string) (int, bool) {
	for i, n := range names {
		if n == w {
			return i, true
		}
	}
	return 0, false
}

func parseLimit(s string) (Limit, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("limit %q: N/DURATION, like 30/1m", s)
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 {
		return Limit{}, fmt.Errorf("limit %q: %q is not a count", s, n)
	}
	d, err := ParseDuration(per)
	if err != nil {
		return Limit{}, fmt.Errorf("limit %q: %w", s, err)
	}
	if d < time.Second {
		return Limit{}, fmt.Errorf("limit %q: a window is at least 1s", s)
	}
	return Limit{v, d}, nil
}

// ParseDuration reads Go durations plus days: "30s", "1m", "6h", "1d".
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: whole days, like 1d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: like 30s, 1m, 6h, 1d", s)
	}
	return d, nil
}

// FormatDuration writes d as ParseDuration reads it, shortly: 1m, 6h, 1d.
func FormatDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
