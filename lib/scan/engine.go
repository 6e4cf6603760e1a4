// Package scan runs a message past content scanners (clamd, spamd, any
// program) and content rules, once for all of them, and weighs what
// they found into one outcome with its header fields and feedback.
package scan

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-shellwords"

	"mf/lib/clamd"
	"mf/lib/config"
	"mf/lib/name"
	"mf/lib/scan/outcome"
	"mf/lib/spamd"
)

// Kinds of engine.
const (
	Clamd   = "clamd"
	Spamd   = "spamd"
	Program = "program"
)

// Defaults.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultTimeout        = 60 * time.Second
	DefaultSpamdMax       = 500 << 10 // spamc's own default
	DefaultClamdMax       = 25 << 20  // Debian's StreamMaxLength
	DefaultProgramMax     = 25 << 20
	DefaultSlotWait       = 30 * time.Second
)

// Engine is one configured scanner.
type Engine struct {
	Name           string
	Kind           string
	Line           string // as configured
	Addrs          []string
	ConnectTimeout time.Duration
	Timeout        time.Duration
	MaxSize        int64
	OnError        *outcome.Outcome // nil: the stage fails (exit 75)
	Cache          bool             // results kept in the store's cache

	// clamd
	OnVirus outcome.Outcome

	// spamd
	User         string // "": spamd's default; "rcpt": each recipient; "local": each recipient's local part; else this name
	Command      string // spamd.Symbols (default), spamd.Headers, spamd.Check, spamd.Report
	TagAt        *float64
	QuarantineAt *float64
	RejectAt     *float64
	SpamTag      outcome.Outcome
	SpamHold     outcome.Outcome
	SpamReject   outcome.Outcome
	SpamHeaders  bool // X-Spam-Status, X-Spam-Score, X-Spam-Flag, X-Spam-Level
	Concurrency  int  // scans at once per user; 0: no limit
	SlotWait     time.Duration

	// program
	Argv  []string
	Exits map[int]*outcome.Outcome
}

// ParseEngine reads a scan.engine value:
//
//	NAME clamd|spamd|program [OPTION=VALUE...] [-- ARGV...]
func ParseEngine(line string) (*Engine, error) {
	words, err := shellwords.Parse(line)
	if err != nil {
		return nil, err
	}
	if len(words) < 2 {
		return nil, fmt.Errorf("want NAME clamd|spamd|program [OPTION=VALUE...] [-- PROGRAM ARG...]")
	}
	e := &Engine{Name: words[0], Kind: words[1], Line: line, ConnectTimeout: DefaultConnectTimeout,
		Timeout: DefaultTimeout, Cache: true, SpamHeaders: true, SlotWait: DefaultSlotWait, Command: spamd.Symbols}
	if err := name.Valid(e.Name); err != nil {
		return nil, fmt.Errorf("engine %w", err)
	}
	switch e.Kind {
	case Clamd:
		e.MaxSize = DefaultClamdMax
		e.OnVirus = outcome.Outcome{Action: outcome.Reject}
	case Spamd:
		e.MaxSize = DefaultSpamdMax
		e.SpamTag = outcome.Outcome{Action: outcome.Tag}
		e.SpamHold = outcome.Outcome{Action: outcome.Quarantine}
		e.SpamReject = outcome.Outcome{Action: outcome.Reject}
	case Program:
		e.MaxSize = DefaultProgramMax
		e.Exits = map[int]*outcome.Outcome{0: {Action: outcome.Continue}}
	default:
		return nil, fmt.Errorf("engine %s: unknown kind %q (want clamd, spamd or program)", e.Name, e.Kind)
	}
	opts := words[2:]
	for i, w := range opts {
		if w == "--" {
			e.Argv = opts[i+1:]
			opts = opts[:i]
			break
		}
	}
	// Outcome options (reply, subject, header, block) go with the
	// engine's main finding; they are kept until the end so that their
	// order does not matter.
	var outOpts [][2]string
	for _, w := range opts {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, fmt.Errorf("engine %s: option %q: want KEY=VALUE", e.Name, w)
		}
		if err := e.option(k, v, &outOpts); err != nil {
			return nil, fmt.Errorf("engine %s: %s: %w", e.Name, k, err)
		}
	}
	for _, kv := range outOpts {
		for _, o := range e.findings() {
			if _, err := o.Option(kv[0], kv[1]); err != nil {
				return nil, fmt.Errorf("engine %s: %w", e.Name, err)
			}
		}
	}
	for _, o := range e.findings() {
		if err := o.Check(); err != nil {
			return nil, fmt.Errorf("engine %s: %w", e.Name, err)
		}
	}
	switch e.Kind {
	case Clamd, Spamd:
		if len(e.Addrs) == 0 {
			return nil, fmt.Errorf("engine %s: no addr= (unix:/PATH or tcp:HOST:PORT)", e.Name)
		}
		if len(e.Argv) > 0 {
			return nil, fmt.Errorf("engine %s: a %s engine runs no program", e.Name, e.Kind)
		}
	case Program:
		if len(e.Argv) == 0 {
			return nil, fmt.Errorf("engine %s: no program: put it after --", e.Name)
		}
		if !strings.HasPrefix(e.Argv[0], "/") {
			return nil, fmt.Errorf("engine %s: program %q: give its absolute path", e.Name, e.Argv[0])
		}
	}
	return e, nil
}

// findings are the outcomes that reply, subject, header and block
// options apply to: a virus; spam at the reject level (block), at every
// level (the rest); a program's non-zero exits.
func (e *Engine) findings() []*outcome.Outcome {
	switch e.Kind {
	case Clamd:
		return []*outcome.Outcome{&e.OnVirus}
	case Spamd:
		return []*outcome.Outcome{&e.SpamReject}
	}
	var out []*outcome.Outcome
	for _, o := range e.Exits {
		if o.Action != outcome.Continue {
			out = append(out, o)
		}
	}
	return out
}

func (e *Engine) option(k, v string, outOpts *[][2]string) error {
	dur := func() (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("bad duration %q", v)
		}
		return d, nil
	}
	var err error
	switch {
	case k == "addr" && e.Kind != Program:
		for _, a := range strings.Split(v, ",") {
			if e.Kind == Clamd {
				err = clamd.CheckAddr(a)
			} else {
				err = spamd.CheckAddr(a)
			}
			if err != nil {
				return err
			}
			e.Addrs = append(e.Addrs, a)
		}
	case k == "connect-timeout" && e.Kind != Program:
		e.ConnectTimeout, err = dur()
	case k == "timeout":
		e.Timeout, err = dur()
	case k == "max-size":
		e.MaxSize, err = config.ParseSize(v)
		if err == nil && e.MaxSize == 0 {
			err = fmt.Errorf("max-size 0 would scan nothing")
		}
	case k == "cache":
		switch v {
		case "yes":
			e.Cache = true
		case "no":
			e.Cache = false
		default:
			err = fmt.Errorf("want yes or no, not %q", v)
		}
	case k == "on-error":
		if v == "error" {
			e.OnError = nil
			break
		}
		a, perr := outcome.ParseAction(v)
		if perr != nil {
			return fmt.Errorf("%w, or error", perr)
		}
		e.OnError = &outcome.Outcome{Action: a}
	case k == "on-virus" && e.Kind == Clamd:
		e.OnVirus.Action, err = outcome.ParseAction(v)
	case k == "user" && e.Kind == Spamd:
		if v == "" || strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("bad user %q", v)
		}
		e.User = v
	case k == "command" && e.Kind == Spamd:
		switch strings.ToUpper(v) {
		case spamd.Check, spamd.Symbols, spamd.Headers, spamd.Report:
			e.Command = strings.ToUpper(v)
		default:
			err = fmt.Errorf("want check, symbols, headers or report, not %q", v)
		}
	case (k == "tag" || k == "quarantine" || k == "reject") && e.Kind == Spamd:
		var p *float64
		if !(k == "tag" && v == "spamd") {
			f, perr := strconv.ParseFloat(v, 64)
			if perr != nil {
				return fmt.Errorf("want a score, not %q", v)
			}
			p = &f
		}
		switch k {
		case "tag":
			e.TagAt = p
		case "quarantine":
			e.QuarantineAt = p
		default:
			e.RejectAt = p
		}
	case k == "subject" && e.Kind == Spamd:
		_, err = e.SpamTag.Option(k, v)
		e.SpamHold.Subject, e.SpamReject.Subject = e.SpamTag.Subject, e.SpamTag.Subject
	case k == "quarantine-reason" && e.Kind == Spamd:
		r := &outcome.QuarantineReply
		rr := *r
		rr.Text = v
		e.SpamHold.Reply = &rr
	case k == "spam-headers" && e.Kind == Spamd:
		e.SpamHeaders = v == "yes"
		if v != "yes" && v != "no" {
			err = fmt.Errorf("want yes or no, not %q", v)
		}
	case k == "concurrency" && e.Kind == Spamd:
		e.Concurrency, err = strconv.Atoi(v)
		if err != nil || e.Concurrency < 0 {
			err = fmt.Errorf("want a number of scans, not %q", v)
		}
	case k == "slot-wait" && e.Kind == Spamd:
		e.SlotWait, err = dur()
	case e.Kind == Program && isNum(k):
		code, _ := strconv.Atoi(k)
		if code > 255 {
			return fmt.Errorf("exit code %d is over 255", code)
		}
		a, perr := outcome.ParseAction(v)
		if perr != nil {
			return perr
		}
		e.Exits[code] = &outcome.Outcome{Action: a}
	case k == "reply" || k == "subject" || k == "header" || k == "block":
		*outOpts = append(*outOpts, [2]string{k, v})
	default:
		return fmt.Errorf("not an option of a %s engine", e.Kind)
	}
	return err
}

func isNum(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
