package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mf/lib/lists"
	"mf/lib/mime"
	"mf/lib/scan/outcome"
	"mf/lib/scan/rule"
	"mf/lib/state"
	"mf/lib/stream"

	"github.com/sourcegraph/conc"
)

// Scanner is the configured engines and rules and what they share.
type Scanner struct {
	Engines  []*Engine
	Rules    []*rule.Rule
	Store    state.Store   // result cache, spamd slots, feedback; nil: none
	CacheTTL time.Duration // 0: no result cache
	Limits   mime.Limits
	// Undecoded is the outcome of a message with a part that could not
	// be decoded; by default it continues, the part named in a field.
	Undecoded outcome.Outcome
	DryRun    bool                  // no cache, slot or feedback writes
	Logf      func(string, ...any)  // informational notes
	Now       func() time.Time      // for tests
	Exec      func(*exec.Cmd) error // for tests; nil: cmd.Run
	// LookupEnv reads the command's environment, for what a program
	// engine inherits (never os.Getenv: inside mf-bridge that is the
	// bridge's); nil: nothing.
	LookupEnv func(string) (string, bool)
	once      sync.Once
	lockID    string // this process's slot holder name
}

// Msg is the message to scan.
type Msg struct {
	Env  *stream.Envelope
	Open func() (io.Reader, error) // the whole message from its first byte, each call anew
	Size int64
}

// Result is what one engine said (for spamd: about one user).
type Result struct {
	Engine  *Engine
	User    string
	Status  string // clean, infected, ham, spam, skipped, error, busy, exit
	Detail  string // signature, score, exit code: for the log, never the reply
	Outcome *outcome.Outcome
	Headers []string
	Dur     time.Duration
	Cached  bool
	Skipped string // why it was not scanned: "size"
	Err     error
}

// Report is the weighed outcome of every engine and rule.
type Report struct {
	Outcome  outcome.Outcome // the heaviest
	By       string          // the engine or rule that decided; "" when nothing did
	Results  []*Result
	Hits     []rule.Hit
	Problems []string // parts that could not be decoded
	Blocked  []string // "LIST ENTRY" feedback given
	Headers  []string // fields to add: tags, X-Spam-*, X-Virus-*, the mf result field
	Subject  string   // Subject prefix asked for, if any
	Drop     []string // fields of the message to take away first: see Drop
	Reason   string
	Trace    string
}

// Drop names the fields a message may not bring along: the ones this
// scanner writes, and which mail is filtered on further down. A message
// that came with "X-Spam-Flag: NO" or "X-Virus-Status: Clean" must not
// pass for scanned. All of X-Spam-* goes where spamd scans, as spamd
// itself does; X-Virus-* where clamd does; always the mf result fields.
func (s *Scanner) Drop() []string {
	drop := []string{ResultField, ResultField + "-Undecoded"}
	var av, sa bool
	for _, e := range s.Engines {
		av = av || e.Kind == Clamd
		sa = sa || e.Kind == Spamd
	}
	if av {
		drop = append(drop, "X-Virus-Scanned", "X-Virus-Status")
	}
	if sa {
		drop = append(drop, "X-Spam-*")
	}
	return drop
}

// ResultField names the mf result field.
const ResultField = "X-Mf-Scan"

// Scan runs every engine (at once) and every rule on m. An engine that
// fails without an on-error outcome makes Scan fail: no verdict.
func (s *Scanner) Scan(ctx context.Context, m *Msg) (*Report, error) {
	if s.Logf == nil {
		s.Logf = func(string, ...any) {}
	}
	// The body's hash first, if the cache needs it; then the engines
	// start, each reading the message for itself, while it is walked
	// here for the rules.
	var sum string
	if s.caching() {
		r, err := m.Open()
		if err != nil {
			return nil, err
		}
		bh := newBodyHash()
		if _, err := io.Copy(bh, r); err != nil {
			return nil, fmt.Errorf("reading message: %w", err)
		}
		sum = bh.sum()
	}
	results := make([][]*Result, len(s.Engines))
	// A panic in an engine reaches Wait, and so the command's own
	// recovery, also when it runs inside mf-bridge.
	var wg conc.WaitGroup
	for i, e := range s.Engines {
		wg.Go(func() { results[i] = s.run(ctx, e, m, sum) })
	}
	w, err := s.walk(m)
	if err != nil {
		wg.Wait()
		return nil, err
	}
	rep := &Report{Problems: w.Problems}
	rep.Hits = rule.Match(s.Rules, w, m.Size)
	wg.Wait()

	var failed []error
	var win *outcome.Outcome
	var reasons []string
	for _, rs := range results {
		for _, res := range rs {
			rep.Results = append(rep.Results, res)
			if res.Err != nil {
				if res.Engine.OnError == nil {
					failed = append(failed, fmt.Errorf("engine %s%s: %w", res.Engine.Name, forUser(res.User), res.Err))
					continue
				}
				s.Logf("engine %s%s: %v (on-error %s)", res.Engine.Name, forUser(res.User), res.Err, res.Engine.OnError.Action)
			}
			rep.Headers = append(rep.Headers, res.Headers...)
			if res.Outcome == nil || res.Outcome.Action == outcome.Continue {
				continue
			}
			rep.Headers = append(rep.Headers, res.Outcome.Headers...)
			if rep.Subject == "" {
				rep.Subject = res.Outcome.Subject
			}
			why := res.Engine.Name + forUser(res.User) + ": " + res.Status
			if res.Detail != "" {
				why += " " + res.Detail
			}
			reasons = append(reasons, why)
			if outcome.Heavier(res.Outcome, win) {
				win, rep.By = res.Outcome, res.Engine.Name
			}
		}
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	for _, h := range rep.Hits {
		o := &h.Rule.Outcome
		rep.Headers = append(rep.Headers, o.Headers...)
		if rep.Subject == "" {
			rep.Subject = o.Subject
		}
		reasons = append(reasons, fmt.Sprintf("rule %s (%s): %s %s", h.Rule.Name, h.Rule.Where, h.Rule.Target, h.What))
		if outcome.Heavier(o, win) {
			win, rep.By = o, "rule:"+h.Rule.Name
		}
	}
	if len(rep.Problems) > 0 && s.Undecoded.Action != outcome.Continue {
		o := &s.Undecoded
		rep.Headers = append(rep.Headers, o.Headers...)
		if rep.Subject == "" {
			rep.Subject = o.Subject
		}
		reasons = append(reasons, "undecoded parts: outcome "+o.Action.String())
		if outcome.Heavier(o, win) {
			win, rep.By = o, "undecoded"
		}
	}
	if win != nil {
		rep.Outcome = *win
	}
	if win != nil && win.Action > outcome.Tag {
		rep.Subject = "" // a message not delivered as it is needs no prefix
	}
	s.feedback(ctx, m, rep)
	rep.Drop = s.Drop()
	rep.Headers = append(s.scannedFields(rep), rep.Headers...)
	rep.Headers = append(rep.Headers, ResultField+": "+resultValue(rep, len(s.Rules) > 0))
	for i, p := range rep.Problems {
		if i == 5 {
			rep.Headers = append(rep.Headers, ResultField+"-Undecoded: "+strconv.Itoa(len(rep.Problems)-5)+" more")
			break
		}
		rep.Headers = append(rep.Headers, ResultField+"-Undecoded: "+short(p))
	}
	// Fields go on one line each: none over the 998 bytes RFC 5322
	// allows a line.
	for i, h := range rep.Headers {
		if len(h) > 998 {
			rep.Headers[i] = strings.ToValidUTF8(h[:998], "")
		}
	}
	rep.Reason = strings.Join(reasons, "; ")
	if len(rep.Problems) > 0 {
		rep.Reason = strings.TrimPrefix(rep.Reason+"; undecoded: "+strings.Join(rep.Problems, "; "), "; ")
	}
	rep.Trace = trace(rep)
	return rep, nil
}

// walk reads the message for the rules and the undecoded parts.
func (s *Scanner) walk(m *Msg) (*mime.Result, error) {
	r, err := m.Open()
	if err != nil {
		return nil, err
	}
	l := s.Limits
	l.DetectTypes = slices.ContainsFunc(s.Rules, func(ru *rule.Rule) bool { return ru.Target == "type" })
	w, err := mime.Walk(r, l)
	if err != nil {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	return w, nil
}

// feedback puts the client or sender on the dynamic lists the outcomes
// that hit ask for. A failure is logged: the verdict stands.
func (s *Scanner) feedback(ctx context.Context, m *Msg, rep *Report) {
	var blocks []*outcome.Block
	var why []string
	for _, r := range rep.Results {
		if r.Outcome != nil && r.Outcome.Block != nil && r.Err == nil {
			blocks = append(blocks, r.Outcome.Block)
			why = append(why, "mf-scan: "+r.Engine.Name+" "+r.Status)
		}
	}
	for _, h := range rep.Hits {
		if h.Rule.Block != nil {
			blocks = append(blocks, h.Rule.Block)
			why = append(why, "mf-scan: rule "+h.Rule.Name)
		}
	}
	for i, b := range blocks {
		entry := m.Env.ClientAddr
		if b.Target == "sender" {
			entry = m.Env.MailFrom
		}
		if entry == "" {
			s.Logf("feedback to %s: no %s to block", b.List, b.Target)
			continue
		}
		if s.DryRun || s.Store == nil {
			if s.Store == nil && !s.DryRun {
				s.Logf("feedback to %s: no state store", b.List)
			}
			continue
		}
		d, err := lists.AddDynamic(ctx, s.Store, b.List, entry, b.For, why[i], "mf-scan")
		if err != nil {
			s.Logf("feedback to %s: %v", b.List, err)
			continue
		}
		rep.Blocked = append(rep.Blocked, d.List+" "+d.Entry)
		s.Logf("%s added to dynamic list %s for %s", d.Entry, d.List, durationOrEver(b.For))
	}
}

func durationOrEver(d time.Duration) string {
	if d == 0 {
		return "ever"
	}
	return d.String()
}

func (s *Scanner) run(ctx context.Context, e *Engine, m *Msg, sum string) []*Result {
	switch e.Kind {
	case Clamd:
		return []*Result{s.clamd(ctx, e, m, sum)}
	case Spamd:
		return s.spamd(ctx, e, m, sum)
	}
	return []*Result{s.program(ctx, e, m, sum)}
}

func (s *Scanner) fail(res *Result, err error) *Result {
	res.Status, res.Err = "error", err
	res.Outcome = res.Engine.OnError
	return res
}

func skipped(res *Result, why string) *Result {
	res.Status, res.Skipped = "skipped", why
	return res
}
