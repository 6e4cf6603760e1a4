// Package verdict is what a stage decides about a message, and the two ways
// that decision travels: an exit code (qmail's convention) and an
// Mf-Verdict envelope field carrying the SMTP reply.
package verdict

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Exit codes. They are the protocol between a stage and whoever ran it, so a
// stage also works as a .qmail delivery program or a hook.
const (
	ExitContinue = 0   // no objection; the next stage runs
	ExitAccept   = 99  // final: accept (also discard and quarantine)
	ExitReject   = 100 // final: permanent refusal, 5xx
	ExitTempfail = 111 // final: try again later, 4xx
	ExitError    = 75  // the stage itself failed; never a verdict
)

// Action is the kind of decision.
type Action int

const (
	Continue Action = iota
	Accept
	Discard
	Quarantine
	Reject
	Tempfail
)

var actionNames = [...]string{"continue", "accept", "discard", "quarantine", "reject", "tempfail"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return actionNames[a]
}

// ParseAction reads an action name as written in Mf-Verdict.
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if strings.EqualFold(s, n) {
			return Action(i), nil
		}
	}
	return Continue, fmt.Errorf("unknown action %q", s)
}

// Final reports whether the action ends the chain.
func (a Action) Final() bool { return a != Continue }

// Refuses reports whether the client is told no: reject or tempfail.
func (a Action) Refuses() bool { return a == Reject || a == Tempfail }

// ExitCode maps the action to the exit code a stage ends with.
func (a Action) ExitCode() int {
	switch a {
	case Accept, Discard, Quarantine:
		return ExitAccept
	case Reject:
		return ExitReject
	case Tempfail:
		return ExitTempfail
	}
	return ExitContinue
}

// Reply is an SMTP reply: code, enhanced status code (RFC 3463) and text.
type Reply struct {
	Code   int
	Status string
	Text   string
}

// Generic replies. They name no list and no scanner, so a refusal tells a
// stranger nothing about how the site filters.
var (
	DefaultReject   = Reply{550, "5.7.1", "Message rejected"}
	DefaultTempfail = Reply{451, "4.7.1", "Try again later"}
)

func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Status != "" {
		b.WriteString(" " + r.Status)
	}
	if r.Text != "" {
		b.WriteString(" " + r.Text)
	}
	return b.String()
}

// Compiled when first used, so a command that never needs it does not
// pay for it at every start.
var (
	codeRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[245][0-9][0-9]$`) })
	statusRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`) })
)

// ParseReply reads "550 5.7.1 Text". The enhanced status code and the text
// are optional; when present the status class must agree with the code.
func ParseReply(s string) (Reply, error) {
	for _, c := range s {
		if c < 0x20 && c != '\t' || c == 0x7f { // a TAB separates like a space
			return Reply{}, fmt.Errorf("reply holds a control character")
		}
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return Reply{}, fmt.Errorf("empty reply")
	}
	if !codeRE().MatchString(f[0]) {
		return Reply{}, fmt.Errorf("reply code %q is not a 2xx, 4xx or 5xx SMTP code", f[0])
	}
	r := Reply{}
	r.Code, _ = strconv.Atoi(f[0])
	rest := f[1:]
	if len(rest) > 0 && statusRE().MatchString(rest[0]) {
		if rest[0][0] != f[0][0] {
			return Reply{}, fmt.Errorf("enhanced status %s does not agree with reply code %s", rest[0], f[0])
		}
		r.Status = rest[0]
		rest = rest[1:]
	}
	r.Text = strings.Join(rest, " ")
	return r, nil
}

// Verdict is a stage's decision. Reply is set for Reject and Tempfail; for
// Quarantine its Text is the reason the MTA records.
type Verdict struct {
	Action Action
	Reply  Reply
}

// ExitCode is the exit code that carries v.
func (v Verdict) ExitCode() int { return v.Action.ExitCode() }

// String is the Mf-Verdict field value: "reject 550 5.7.1 Text",
// "accept", "quarantine Reason".
func (v Verdict) String() string {
	switch v.Action {
	case Reject, Tempfail:
		return v.Action.String() + " " + v.Reply.String()
	case Quarantine:
		if v.Reply.Text != "" {
			return "quarantine " + v.Reply.Text
		}
	}
	return v.Action.String()
}

// Parse reads an Mf-Verdict value. A bare "reject" or "tempfail" gets the
// generic reply.
func Parse(s string) (Verdict, error) {
	word, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	a, err := ParseAction(word)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Action: a}
	rest = strings.TrimSpace(rest)
	switch a {
	case Reject, Tempfail:
		want, def := byte('5'), DefaultReject
		if a == Tempfail {
			want, def = '4', DefaultTempfail
		}
		if rest == "" {
			v.Reply = def
			return v, nil
		}
		r, err := ParseReply(rest)
		if err != nil {
			return Verdict{}, fmt.Errorf("%s: %w", a, err)
		}
		if strconv.Itoa(r.Code)[0] != want {
			return Verdict{}, fmt.Errorf("%s needs a %cxx reply code, not %d", a, want, r.Code)
		}
		v.Reply = r
	case Quarantine:
		v.Reply.Text = rest
	default:
		if rest != "" {
			return Verdict{}, fmt.Errorf("%s takes no reply", a)
		}
	}
	return v, nil
}

// New makes a Reject or Tempfail verdict, or a plain one for other actions.
func New(a Action, r Reply) Verdict {
	if a != Reject && a != Tempfail && a != Quarantine {
		r = Reply{}
	}
	return Verdict{Action: a, Reply: r}
}
