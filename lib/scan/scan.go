package scan

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"mf/lib/clamd"
	"mf/lib/lists"
	"mf/lib/mime"
	"mf/lib/scan/outcome"
	"mf/lib/scan/rule"
	"mf/lib/spamd"
	"mf/lib/state"
	"mf/lib/stream"
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
	Reason   string
	Trace    string
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
	var wg sync.WaitGroup
	for i, e := range s.Engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(ctx, e, m, sum)
		}()
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

func (s *Scanner) caching() bool {
	if s.Store == nil || s.CacheTTL <= 0 {
		return false
	}
	for _, e := range s.Engines {
		if e.Cache {
			return true
		}
	}
	return false
}

func (s *Scanner) walk(m *Msg) (*mime.Result, error) {
	r, err := m.Open()
	if err != nil {
		return nil, err
	}
	w, err := mime.Walk(r, s.Limits)
	if err != nil {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	return w, nil
}

func forUser(u string) string {
	if u == "" {
		return ""
	}
	return " user " + u
}

// clean makes a value fit one header line.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return s
}

// short is clean for a header field: at most 200 bytes.
func short(s string) string {
	s = clean(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}

func (s *Scanner) scannedFields(rep *Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Engine.Kind != Clamd || seen[r.Engine.Name] || r.Err != nil || r.Skipped != "" {
			continue
		}
		seen[r.Engine.Name] = true
		if len(out) == 0 {
			out = append(out, "X-Virus-Scanned: ClamAV using mf-scan")
		}
		status := "Clean"
		if r.Status == "infected" {
			status = "Infected"
		}
		out = append(out, "X-Virus-Status: "+status)
	}
	return out
}

// resultValue is the mf result field: the outcome, what each engine
// said and took, the rules that hit, what was skipped and undecoded.
func resultValue(rep *Report, rules bool) string {
	var b strings.Builder
	b.WriteString(rep.Outcome.Action.String())
	if rep.By != "" {
		b.WriteString(" by " + rep.By)
	}
	var skipped []string
	for _, r := range rep.Results {
		b.WriteString("; " + r.Engine.Name + "=" + r.Status)
		if r.User != "" {
			b.WriteString(" user=" + clean(strings.ReplaceAll(r.User, ";", "%3B")))
		}
		if r.Engine.Kind == Spamd && r.Status != "skipped" && r.Err == nil && r.Detail != "" {
			b.WriteString(" " + r.Detail)
		}
		if r.Cached {
			b.WriteString(" cached")
		} else {
			fmt.Fprintf(&b, " %.0fms", float64(r.Dur.Microseconds())/1000)
		}
		if r.Skipped != "" {
			skipped = append(skipped, r.Engine.Name+":"+r.Skipped)
		}
	}
	if rules {
		names := []string{}
		for _, h := range rep.Hits {
			names = append(names, h.Rule.Name)
		}
		if len(names) == 0 {
			b.WriteString("; rules=none")
		} else {
			b.WriteString("; rules=" + clean(strings.Join(names, ",")))
		}
	}
	if len(skipped) > 0 {
		b.WriteString("; skipped=" + strings.Join(skipped, ","))
	}
	if len(rep.Problems) > 0 {
		var paths []string
		for _, p := range rep.Problems {
			path, _, _ := strings.Cut(p, ":")
			if len(paths) == 0 || paths[len(paths)-1] != path {
				paths = append(paths, path)
			}
		}
		b.WriteString("; undecoded=" + clean(strings.Join(paths, ",")))
	}
	return b.String()
}

func trace(rep *Report) string {
	var f []string
	if rep.By != "" {
		f = append(f, "by="+rep.By)
	}
	for _, r := range rep.Results {
		v := r.Engine.Name + "=" + r.Status
		if r.Skipped != "" {
			v += ":" + r.Skipped
		}
		if r.Cached {
			v += ":cached"
		}
		f = append(f, v)
	}
	if len(rep.Hits) > 0 {
		f = append(f, "rules="+strconv.Itoa(len(rep.Hits)))
	}
	if len(rep.Problems) > 0 {
		f = append(f, "undecoded="+strconv.Itoa(len(rep.Problems)))
	}
	if len(rep.Blocked) > 0 {
		f = append(f, "blocked="+strconv.Itoa(len(rep.Blocked)))
	}
	return strings.Join(f, " ")
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

// bodyHash hashes the body (after the first empty line) and, in case
// there is none, the whole message.
type bodyHash struct {
	body, all hash.Hash
	state     int // 0 in a line, 1 after LF, 2 after LF CR, 3 in the body
}

func newBodyHash() *bodyHash { return &bodyHash{body: sha256.New(), all: sha256.New()} }

func (b *bodyHash) Write(p []byte) (int, error) {
	b.all.Write(p)
	if b.state == 3 {
		return b.body.Write(p)
	}
	for i, c := range p {
		switch {
		case c == '\n' && b.state >= 1:
			b.state = 3
			b.body.Write(p[i+1:])
			return len(p), nil
		case c == '\n':
			b.state = 1
		case c == '\r' && b.state == 1:
			b.state = 2
		default:
			b.state = 0
		}
	}
	return len(p), nil
}

func (b *bodyHash) sum() string {
	if b.state == 3 {
		return "b" + hex.EncodeToString(b.body.Sum(nil))
	}
	return "m" + hex.EncodeToString(b.all.Sum(nil))
}

// cached is an engine's answer as the result cache keeps it: what the
// engine said, not the outcome, which configuration gives it.
type cached struct {
	Infected  bool     `json:"infected,omitempty"`
	Signature string   `json:"sig,omitempty"`
	TooBig    bool     `json:"too_big,omitempty"`
	Spam      bool     `json:"spam,omitempty"`
	Score     float64  `json:"score,omitempty"`
	Threshold float64  `json:"threshold,omitempty"`
	Symbols   []string `json:"symbols,omitempty"`
	Fields    []string `json:"fields,omitempty"` // spamd HEADERS' X-Spam-* or a program's header lines
	Exit      int      `json:"exit,omitempty"`
}

func keyPart(s string) string {
	return strings.NewReplacer("%", "%25", "|", "%7C", ":", "%3A").Replace(strings.ToLower(s))
}

func (s *Scanner) cacheKey(e *Engine, user, sum string) string {
	return "sc:" + e.Name + ":" + keyPart(user) + ":" + sum
}

func (s *Scanner) lookup(ctx context.Context, e *Engine, user, sum string) (*cached, bool) {
	if s.Store == nil || s.CacheTTL <= 0 || !e.Cache {
		return nil, false
	}
	ent, ok, err := s.Store.Get(ctx, s.cacheKey(e, user, sum))
	if err != nil {
		s.Logf("cache: %v", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	var c cached
	if json.Unmarshal(ent.Value, &c) != nil {
		return nil, false
	}
	return &c, true
}

func (s *Scanner) store(ctx context.Context, e *Engine, user, sum string, c *cached) {
	if s.Store == nil || s.CacheTTL <= 0 || !e.Cache || s.DryRun {
		return
	}
	v, _ := json.Marshal(c)
	if err := s.Store.Set(ctx, s.cacheKey(e, user, sum), v, s.CacheTTL); err != nil {
		s.Logf("cache: %v", err)
	}
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

func (s *Scanner) clamd(ctx context.Context, e *Engine, m *Msg, sum string) *Result {
	start := time.Now()
	res := &Result{Engine: e}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, "", sum)
	if !ok {
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cl := &clamd.Client{Addrs: e.Addrs, ConnectTimeout: e.ConnectTimeout, Timeout: e.Timeout}
		cr, err := cl.Scan(ctx, r)
		if err != nil {
			return s.fail(res, err)
		}
		c = &cached{Infected: cr.Infected, Signature: cr.Signature, TooBig: cr.TooBig}
		s.store(ctx, e, "", sum, c)
	}
	res.Cached = ok
	switch {
	case c.TooBig:
		return skipped(res, "size")
	case c.Infected:
		res.Status, res.Detail, res.Outcome = "infected", c.Signature, &e.OnVirus
	default:
		res.Status = "clean"
	}
	return res
}

// users are the spamd users of a message: one per distinct recipient
// (as spamc -u would be run once for each), or the one configured.
func users(e *Engine, env *stream.Envelope) []string {
	switch e.User {
	case "rcpt", "local":
		seen := map[string]bool{}
		var out []string
		for _, r := range env.CurrentRcpts() {
			u := strings.ToLower(r)
			if e.User == "local" {
				if i := strings.LastIndexByte(u, '@'); i >= 0 {
					u = u[:i]
				}
			}
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			out = append(out, u)
		}
		if len(out) == 0 {
			return []string{""}
		}
		return out
	}
	return []string{e.User}
}

func (s *Scanner) spamd(ctx context.Context, e *Engine, m *Msg, sum string) []*Result {
	us := users(e, m.Env)
	out := make([]*Result, len(us))
	var wg sync.WaitGroup
	for i, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.spamdUser(ctx, e, m, sum, u)
		}()
	}
	wg.Wait()
	var top *Result
	var topScore float64
	for _, res := range out {
		if res.Err == nil && res.Skipped == "" && res.Status != "busy" {
			if sc := res.score(); top == nil || sc > topScore {
				top, topScore = res, sc
			}
		}
	}
	// The X-Spam-* fields say what the highest score was, once.
	for _, r := range out {
		if r != top {
			r.Headers = nil
		}
	}
	return out
}

func (r *Result) score() float64 {
	f, _ := strconv.ParseFloat(strings.Fields(r.Detail + " 0")[0], 64)
	return f
}

func (s *Scanner) spamdUser(ctx context.Context, e *Engine, m *Msg, sum, user string) *Result {
	start := time.Now()
	res := &Result{Engine: e, User: user}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, user, sum)
	if !ok {
		if e.Concurrency > 0 && s.Store != nil && !s.DryRun {
			release, err := s.slot(ctx, e, user)
			if err != nil {
				return s.fail(res, err)
			}
			if release == nil {
				res.Status = "busy"
				res.Detail = fmt.Sprintf("%d scans already running", e.Concurrency)
				res.Outcome = &outcome.Outcome{Action: outcome.Tempfail}
				return res
			}
			defer release()
		}
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cl := &spamd.Client{Addrs: e.Addrs, ConnectTimeout: e.ConnectTimeout, Timeout: e.Timeout}
		sr, err := cl.Scan(ctx, e.Command, user, r, m.Size)
		if err != nil {
			return s.fail(res, err)
		}
		c = &cached{Spam: sr.Spam, Score: sr.Score, Threshold: sr.Threshold, Symbols: sr.Symbols}
		if e.Command == spamd.Headers {
			c.Fields = spamFields(sr.Body)
		}
		if e.Command == spamd.Report && len(sr.Body) > 0 {
			rep := strings.Join(strings.Fields(strings.ToValidUTF8(string(sr.Body), "?")), " ")
			if len(rep) > 4000 {
				rep = rep[:4000]
			}
			s.Logf("spamd report for %q: %s", user, clean(rep))
		}
		s.store(ctx, e, user, sum, c)
	}
	res.Cached = ok
	tagged := c.Spam
	if e.TagAt != nil {
		tagged = c.Score >= *e.TagAt
	}
	res.Status = "ham"
	if tagged {
		res.Status = "spam"
	}
	res.Detail = fmt.Sprintf("%.1f/%.1f", c.Score, c.Threshold)
	switch {
	case e.RejectAt != nil && c.Score >= *e.RejectAt:
		res.Outcome = &e.SpamReject
	case e.QuarantineAt != nil && c.Score >= *e.QuarantineAt:
		res.Outcome = &e.SpamHold
	case tagged:
		res.Outcome = &e.SpamTag
	}
	if e.SpamHeaders {
		res.Headers = spamHeaders(c, tagged)
	}
	return res
}

// slot takes one of the engine's concurrency slots of user, waiting up
// to SlotWait; release is nil when none came free.
func (s *Scanner) slot(ctx context.Context, e *Engine, user string) (release func(), err error) {
	s.once.Do(func() {
		var b [8]byte
		rand.Read(b[:])
		s.lockID = strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	})
	key := "ss:" + e.Name + ":" + keyPart(user)
	id := s.lockID
	ttl := e.ConnectTimeout*time.Duration(len(e.Addrs)) + e.Timeout + 10*time.Second
	deadline := time.Now().Add(e.SlotWait)
	wait := 20 * time.Millisecond
	for {
		ok, _, err := s.Store.Lease(ctx, key, id, e.Concurrency, ttl)
		if err != nil {
			return nil, fmt.Errorf("slot: %w", err)
		}
		if ok {
			return func() {
				if err := s.Store.Release(context.WithoutCancel(ctx), key, id); err != nil {
					s.Logf("slot release: %v", err)
				}
			}, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// spamHeaders are the fields SpamAssassin itself would add, which
// administrators filter on.
func spamHeaders(c *cached, tagged bool) []string {
	if len(c.Fields) > 0 {
		return c.Fields
	}
	flag, yes := "NO", "No"
	if tagged {
		flag, yes = "YES", "Yes"
	}
	status := fmt.Sprintf("X-Spam-Status: %s, score=%.1f required=%.1f", yes, c.Score, c.Threshold)
	if len(c.Symbols) > 0 {
		status += " tests=" + clean(strings.Join(c.Symbols, ","))
	}
	h := []string{"X-Spam-Flag: " + flag, fmt.Sprintf("X-Spam-Score: %.1f", c.Score), status}
	if n := int(c.Score); n > 0 {
		h = append(h, "X-Spam-Level: "+strings.Repeat("*", min(n, 50)))
	}
	return h
}

// spamFields picks the X-Spam-* fields out of a HEADERS reply, each
// unfolded onto one line.
func spamFields(block []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n") {
		if l == "" {
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && len(out) > 0 {
			if out[len(out)-1] != "" {
				out[len(out)-1] += " " + strings.TrimSpace(l)
			}
			continue
		}
		if strings.HasPrefix(strings.ToLower(l), "x-spam-") {
			out = append(out, clean(l))
		} else {
			out = append(out, "")
		}
	}
	var fields []string
	for _, f := range out {
		if f != "" {
			fields = append(fields, f)
		}
	}
	return fields
}

// MaxProgramOutput bounds what a program engine may print.
const MaxProgramOutput = 64 << 10

func (s *Scanner) program(ctx context.Context, e *Engine, m *Msg, sum string) *Result {
	start := time.Now()
	res := &Result{Engine: e}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, "", sum)
	if !ok {
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cctx, cancel := context.WithTimeout(ctx, e.Timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, e.Argv[0], e.Argv[1:]...)
		cmd.Stdin = r
		var out limited
		cmd.Stdout = &out
		var errb limited
		cmd.Stderr = &errb
		cmd.Env = append(os.Environ(), "SENDER="+m.Env.MailFrom, "TCPREMOTEIP="+m.Env.ClientAddr,
			"MF_QUEUE_ID="+m.Env.QueueID, "MF_SIZE="+strconv.FormatInt(m.Size, 10))
		if rc := m.Env.CurrentRcpts(); len(rc) > 0 {
			cmd.Env = append(cmd.Env, "RECIPIENT="+rc[0])
		}
		run := s.Exec
		if run == nil {
			run = (*exec.Cmd).Run
		}
		err = run(cmd)
		var ee *exec.ExitError
		switch {
		case cctx.Err() == context.DeadlineExceeded:
			return s.fail(res, fmt.Errorf("timed out after %s", e.Timeout))
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
		case err != nil:
			return s.fail(res, err)
		}
		if out.over {
			return s.fail(res, fmt.Errorf("printed more than %d bytes", MaxProgramOutput))
		}
		c = &cached{Exit: cmd.ProcessState.ExitCode()}
		for _, l := range strings.Split(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n") {
			if l == "" {
				continue
			}
			name, _, ok := strings.Cut(l, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return s.fail(res, fmt.Errorf("printed %q, not a header field", clean(l)))
			}
			c.Fields = append(c.Fields, clean(l))
		}
		if _, known := e.Exits[c.Exit]; known {
			s.store(ctx, e, "", sum, c)
		} else if msg := strings.TrimSpace(errb.String()); msg != "" {
			s.Logf("engine %s: %s", e.Name, clean(msg))
		}
	}
	res.Cached = ok
	o, known := e.Exits[c.Exit]
	if !known {
		return s.fail(res, fmt.Errorf("exit %d, which no %d= option maps", c.Exit, c.Exit))
	}
	res.Status, res.Detail = "exit", strconv.Itoa(c.Exit)
	if o.Action == outcome.Continue {
		res.Status = "clean"
	}
	res.Outcome = o
	res.Headers = c.Fields
	return res
}

// limited keeps the first MaxProgramOutput bytes written to it.
type limited struct {
	bytes.Buffer
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if l.Len()+len(p) > MaxProgramOutput {
		l.over = true
		l.Buffer.Write(p[:max(0, MaxProgramOutput-l.Len())])
		return len(p), nil
	}
	return l.Buffer.Write(p)
}
