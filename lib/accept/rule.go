package accept

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mf/lib/config"
	"mf/lib/dns"
	"mf/lib/dnsbl"
	"mf/lib/verdict"
)

// Action is what a check that fires does.
type Action int

const (
	Reject     Action = iota // refuse, 5xx
	Tempfail                 // refuse for now, 4xx
	Quarantine               // take it, held (data only; before data it is a reject)
	Tag                      // take it, named in the X-Mf-Accept field
	Score                    // add the rule's score toward the thresholds
)

var actionNames = [...]string{"reject", "tempfail", "quarantine", "tag", "score"}

func (a Action) String() string { return actionNames[a] }

// Rule is how one check is set: its outcome, reply and whether it only
// says what it would do.
type Rule struct {
	Name   string
	Action Action
	Score  float64
	Reply  verdict.Reply // zero: the generic reply of the action
	DryRun bool
}

// Checks are the names accept.check takes, with the action a rule gets
// when it names none.
var Checks = map[string]Action{
	"helo-syntax": Reject, "helo-bare-ip": Reject, "helo-own": Reject, "helo-literal": Reject,
	"rdns-missing": Tempfail, "fcrdns": Score, "rdns-generic": Score,
	"spf-fail": Reject, "spf-softfail": Tag, "spf-permerror": Tag, "spf-temperror": Tempfail,
	"dmarc-reject": Reject, "dmarc-quarantine": Quarantine,
	"greylist":  Tempfail,
	"max-rcpts": Tempfail, "max-size": Reject, "null-sender-rcpts": Reject,
	"header-missing": Reject, "header-duplicate": Reject, "header-from-sender": Reject, "header-own-domain": Reject,
}

// GreylistReply is what a greylisted attempt is told.
var GreylistReply = verdict.Reply{Code: 451, Status: "4.7.1", Text: "Greylisted, try again later"}

// ParseRule reads an accept.check value:
// NAME [action=reject|tempfail|quarantine|tag|score] [score=N] [reply="..."] [dry-run].
func ParseRule(s string) (*Rule, error) {
	words, err := config.Words(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty check")
	}
	def, ok := Checks[words[0]]
	if !ok {
		return nil, fmt.Errorf("unknown check %q", words[0])
	}
	r := &Rule{Name: words[0], Action: def, Score: 1}
	if r.Name == "greylist" {
		r.Reply = GreylistReply
	}
	return r, r.options(words[1:], nil)
}

// options reads the key=value words every rule takes; other is given the
// ones it does not know (a list's codes=, on=).
func (r *Rule) options(words []string, other func(k, v string) error) error {
	seen := map[string]bool{}
	var reply string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if w == "dry-run" {
			k, v, ok = "dry-run", "yes", true
		}
		if !ok {
			return fmt.Errorf("%q: options are key=value", w)
		}
		if seen[k] {
			return fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "action":
			i := -1
			for j, n := range actionNames {
				if n == v {
					i = j
				}
			}
			if i < 0 {
				return fmt.Errorf("action %q: one of %s", v, strings.Join(actionNames[:], ", "))
			}
			r.Action = Action(i)
		case "score":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < -1000 || f > 1000 || f != f {
				return fmt.Errorf("score %q: a number from -1000 to 1000", v)
			}
			r.Score = f
		case "reply":
			reply = v
		case "dry-run":
			if v != "yes" && v != "no" {
				return fmt.Errorf("dry-run=%q: yes or no", v)
			}
			r.DryRun = v == "yes"
		default:
			if other == nil {
				return fmt.Errorf("unknown option %q", k)
			}
			if err := other(k, v); err != nil {
				return err
			}
		}
	}
	if seen["score"] && !seen["action"] {
		r.Action = Score
	}
	if r.Name == "greylist" && r.Action != Tempfail && r.Action != Tag && r.Action != Score {
		return fmt.Errorf("greylist: action %s makes no sense, a greylist asks to try again", r.Action)
	}
	if reply != "" {
		rp, err := verdict.ParseReply(reply)
		if err != nil {
			return fmt.Errorf("reply: %w", err)
		}
		want := map[Action]int{Reject: 5, Tempfail: 4}[r.Action]
		if want == 0 {
			return fmt.Errorf("reply: a %s gives no SMTP reply", r.Action)
		}
		if rp.Code/100 != want {
			return fmt.Errorf("reply %q: a %s needs a %dxx code", reply, r.Action, want)
		}
		r.Reply = rp
	}
	return nil
}

// List is a DNS list and what it listing a key does.
type List struct {
	Zone   *dnsbl.Zone
	Rule   *Rule
	On     []string // rhsbl: the domains asked, "sender" and/or "helo"
	Server string   // host:port asked directly instead of the resolver (a local mirror)
}

// ParseList reads an accept.dnsbl, accept.dnswl or accept.rhsbl value:
// ZONE [codes=A,B-C,NET] [mask=N] [server=ADDR:PORT] [test=KEY] [probe=no] [on=sender,helo] [action=...] [score=N] [reply="..."] [dry-run].
func ParseList(kind dnsbl.Kind, s string) (*List, error) {
	words, err := config.Words(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty list")
	}
	zone := strings.ToLower(strings.TrimSuffix(words[0], "."))
	if h := ParseHelo(zone); h.Kind != FQDN {
		return nil, fmt.Errorf("zone %q is not a domain", words[0])
	}
	l := &List{Zone: &dnsbl.Zone{Name: zone, Kind: kind}, Rule: &Rule{Name: kind.String() + ":" + zone, Action: Reject, Score: 1}}
	if kind == dnsbl.RHS {
		l.On = []string{"sender", "helo"}
	}
	err = l.Rule.options(words[1:], func(k, v string) error {
		switch {
		case k == "codes":
			c, err := dnsbl.ParseCodes(v)
			l.Zone.Codes = c
			return err
		case k == "mask":
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil || n == 0 {
				return fmt.Errorf("mask %q: a number from 1 to 255", v)
			}
			l.Zone.Mask = uint8(n)
		case k == "test":
			if _, err := l.Zone.Query(v); err != nil {
				return fmt.Errorf("test=%s: %v", v, err)
			}
			l.Zone.Test = v
		case k == "probe":
			if v != "yes" && v != "no" {
				return fmt.Errorf("probe=%q: yes or no", v)
			}
			l.Zone.NoProbe = v == "no"
		case k == "server":
			a, err := dns.ServerAddr(v)
			l.Server, l.Zone.Server = a, a
			return err
		case k == "on" && kind == dnsbl.RHS:
			l.On = nil
			for _, o := range strings.Split(v, ",") {
				if o != "sender" && o != "helo" {
					return fmt.Errorf("on=%q: sender, helo or both", v)
				}
				l.On = append(l.On, o)
			}
		default:
			return fmt.Errorf("unknown option %q", k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kind == dnsbl.Allow && (l.Rule.Reply != verdict.Reply{}) {
		return nil, errors.New("a dnswl takes no reply: it only exempts")
	}
	return l, nil
}
