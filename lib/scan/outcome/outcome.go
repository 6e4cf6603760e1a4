// Package outcome is what a content scanner or rule asks for when it
// hits: an action, its reply, and feedback to a dynamic block list.
package outcome

import (
	"fmt"
	"strings"
	"time"

	"mf/lib/lists"
	"mf/lib/verdict"
)

// Action is an outcome's action, in order of weight: when several
// engines and rules hit, the heaviest wins.
type Action int

const (
	Continue   Action = iota // nothing to do
	Tag                      // header fields (and a Subject prefix) on the message
	Quarantine               // accepted and held by the MTA
	Tempfail                 // 4xx: try again later
	Discard                  // accepted and dropped
	Reject                   // 5xx
)

var names = [...]string{"continue", "tag", "quarantine", "tempfail", "discard", "reject"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(names) {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return names[a]
}

// ParseAction reads an action name.
func ParseAction(s string) (Action, error) {
	for i, n := range names {
		if s == n {
			return Action(i), nil
		}
	}
	return Continue, fmt.Errorf("unknown outcome %q (want one of %s)", s, strings.Join(names[:], ", "))
}

// Block is feedback: the client address or the sender goes on a dynamic
// block list for a while.
type Block struct {
	Target string // "client" or "sender"
	List   string
	For    time.Duration // 0: until deleted
}

// ParseBlock reads "client:LIST:DURATION" or "sender:LIST:DURATION"
// (the duration may be left out: until deleted).
func ParseBlock(s string) (*Block, error) {
	f := strings.Split(s, ":")
	if len(f) < 2 || len(f) > 3 || (f[0] != "client" && f[0] != "sender") {
		return nil, fmt.Errorf("block %q: want client:LIST[:DURATION] or sender:LIST[:DURATION]", s)
	}
	b := &Block{Target: f[0], List: f[1]}
	if _, err := lists.CheckDynamic(b.List, "192.0.2.1"); err != nil {
		return nil, fmt.Errorf("block %q: %w", s, err)
	}
	if len(f) == 3 {
		d, err := time.ParseDuration(f[2])
		if err != nil || d < 0 {
			return nil, fmt.Errorf("block %q: bad duration %q", s, f[2])
		}
		b.For = d
	}
	return b, nil
}

func (b *Block) String() string {
	s := b.Target + ":" + b.List
	if b.For > 0 {
		s += ":" + b.For.String()
	}
	return s
}

// Outcome is an action with what goes with it.
type Outcome struct {
	Action  Action
	Reply   *verdict.Reply // reject, tempfail; quarantine's reason; nil: the generic one
	Subject string         // tag: prefix put before the Subject
	Headers []string       // tag: "Name: value" fields added
	Block   *Block         // feedback, with any action
}

// Option reads one "key=value" option of an outcome and reports whether
// key was one (reply, subject, header, block).
func (o *Outcome) Option(key, val string) (bool, error) {
	switch key {
	case "reply":
		r, err := verdict.ParseReply(val)
		if err != nil {
			return true, fmt.Errorf("reply: %w", err)
		}
		o.Reply = &r
	case "subject":
		if strings.ContainsAny(val, "\r\n") {
			return true, fmt.Errorf("subject: holds a line break")
		}
		o.Subject = val
	case "header":
		name, _, ok := strings.Cut(val, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") || strings.ContainsAny(val, "\r\n") {
			return true, fmt.Errorf("header %q: want Name: value", val)
		}
		o.Headers = append(o.Headers, val)
	case "block":
		b, err := ParseBlock(val)
		if err != nil {
			return true, err
		}
		o.Block = b
	default:
		return false, nil
	}
	return true, nil
}

// Check refuses a reply that does not fit the action.
func (o *Outcome) Check() error {
	if o.Reply == nil {
		return nil
	}
	c := o.Reply.Code / 100
	switch o.Action {
	case Reject:
		if c != 5 {
			return fmt.Errorf("reject needs a 5xx reply, not %d", o.Reply.Code)
		}
	case Tempfail:
		if c != 4 {
			return fmt.Errorf("tempfail needs a 4xx reply, not %d", o.Reply.Code)
		}
	}
	return nil
}

// Generic replies: they name no engine and no signature.
var (
	RejectReply     = verdict.Reply{Code: 550, Status: "5.7.1", Text: "Message content rejected"}
	TempfailReply   = verdict.Reply{Code: 451, Status: "4.7.1", Text: "Message content could not be checked, try again later"}
	QuarantineReply = verdict.Reply{Text: "held by content scan"}
)

// Verdict is the verdict the action stands for; Tag and Continue
// continue.
func (o *Outcome) Verdict() verdict.Verdict {
	r := func(def verdict.Reply) verdict.Reply {
		if o.Reply != nil {
			return *o.Reply
		}
		return def
	}
	switch o.Action {
	case Reject:
		return verdict.Verdict{Action: verdict.Reject, Reply: r(RejectReply)}
	case Tempfail:
		return verdict.Verdict{Action: verdict.Tempfail, Reply: r(TempfailReply)}
	case Discard:
		return verdict.Verdict{Action: verdict.Discard}
	case Quarantine:
		return verdict.Verdict{Action: verdict.Quarantine, Reply: verdict.Reply{Text: r(QuarantineReply).Text}}
	}
	return verdict.Verdict{Action: verdict.Continue}
}

// Heavier reports whether a outweighs b.
func Heavier(a, b *Outcome) bool { return b == nil || a.Action > b.Action }
