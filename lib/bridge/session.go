// Package bridge is the SMTP transaction as the chain sees it, whatever
// the MTA: the session and its phases, early decisions, pending discard
// and quarantine, per-recipient refusal and the decision record. The
// milter, qmail-queue, policy and test front-ends of mf-bridge are
// adapters that feed it and carry its replies back.
package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"mf/lib/chain"
	"mf/lib/decision"
	"mf/lib/edit"
	"mf/lib/logger"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Config is one configuration generation: built at start and at each
// reload by the same function, and shared by the sessions started under
// it, so a session never sees half of an old configuration and half of a
// new one.
type Config struct {
	Chain    *chain.Chain
	SpoolDir string // where messages are spooled ("" = $TMPDIR)
	Hidden   int    // header fields the MTA keeps above the header it shows
	Log      *logger.Logger
	Records  *Recorder     // the decision log; nil writes none
	InFlight *atomic.Int64 // transactions under way; may be nil
	// Observe is told of every decision, as its record (the bridge's
	// metrics); may be nil.
	Observe func(*decision.Record)
	// TraceHeader, when set, is a header field added to accepted mail
	// naming the host and each stage that ran and what it said (stage
	// names only: no list, rule or scanner result); "" adds none.
	TraceHeader string
}

// Session is one SMTP connection as the chain sees it: what the MTA said
// at each phase, and what the stages made of it. Every front-end drives it
// the same way, so "mf-bridge test" shows what the milter would do.
type Session struct {
	cfg   *Config
	chain *chain.Chain
	// Hidden is how many fields the MTA keeps above the header it shows
	// and counts in insert indexes (Postfix's and sendmail's Received:);
	// an adapter that tells the MTA sets it at connect.
	Hidden int

	// Connection: kept across messages.
	env         stream.Envelope // the chain's view at connect and helo
	connMacros  map[string]string
	connResults []*chain.Result
	connPending *verdict.Verdict // discard or quarantine decided before MAIL
	accepted    bool             // a stage accepted the whole connection

	msg *message // the transaction under way, from MAIL on
}

// message is one transaction, MAIL to end of DATA.
type message struct {
	start    time.Time
	env      stream.Envelope // the chain's view
	macros   map[string]string
	mtaFrom  string   // as the MTA has them, for envelope edits
	mtaRcpts []string //
	results  []*chain.Result
	pending  *verdict.Verdict // discard or quarantine decided before DATA
	fields   []stream.Field   // the header as the MTA showed it, in order
	eoh      bool             // the header is complete
	spool    *spool.Writer    // header and body, LF line ends; nil when no data stage runs
	orig     *spool.Message   // the spool, finished at EOM
	bodyAt   int64            // offset of the body in spool
	size     int64            // bytes as the MTA sent them, CRLF line ends
}

// Reply is what the MTA is told at one phase.
type Reply struct {
	Verdict verdict.Verdict // Continue, Accept, Discard, Reject or Tempfail; Quarantine at EOM
	Results []*chain.Result // the stages that ran at this phase
	Edits   []edit.Edit     // at EOM
	Body    *spool.Message  // a new body (from its first byte), at EOM; nil when unchanged
	// At EOM, for a front-end that hands the message on itself: the
	// envelope as the chain left it, refused recipients already out.
	Sender  string
	Rcpts   []string
	outcome *chain.Outcome
	orig    *spool.Message // the message as the MTA gave it
	hdr     []stream.Field // and its header
}

// Close lets go of spooled files. Call it once the reply has been used.
func (r *Reply) Close() {
	if r.outcome != nil {
		r.outcome.Close()
	}
	if r.orig != nil {
		r.orig.Close()
		r.orig = nil
	}
}

// WriteMessage writes the message as the chain left it, LF line ends:
// the header as the stages changed it with the fields they asked to add
// at its end, as an MTA appends them, then the body. It is for front-ends
// that hand the message on themselves; valid at EOM until Close.
func (r *Reply) WriteMessage(w io.Writer) error {
	msg := r.orig
	if r.outcome != nil && r.outcome.Message != nil {
		msg = r.outcome.Message
	}
	if msg == nil {
		return errors.New("no message: no data stage spooled it")
	}
	fields, body, _, err := split(msg)
	if err != nil {
		return err
	}
	if r.outcome != nil {
		for _, h := range r.outcome.Env.AddHeaders {
			name, value, _ := strings.Cut(h, ":")
			fields = append(fields, stream.Field{Name: name, Value: strings.TrimPrefix(value, " ")})
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, f := range fields {
		bw.WriteString(f.Name + ": " + f.Value + "\n")
	}
	bw.WriteString("\n")
	if _, err := io.Copy(bw, body); err != nil {
		return err
	}
	return bw.Flush()
}

// NewSession starts a connection under cfg.
func NewSession(cfg *Config) *Session {
	return &Session{cfg: cfg, chain: cfg.Chain, Hidden: cfg.Hidden, connMacros: map[string]string{}}
}

// Close ends the connection.
func (s *Session) Close() { s.Abort() }

func (c *Config) inFlight(n int64) {
	if c.InFlight != nil {
		c.InFlight.Add(n)
	}
}

// Step runs the stages of env's phase with no transaction around them,
// as the policy front-end asks, and records what it decided, continue
// included: every request has its record.
func (c *Config) Step(ctx context.Context, env stream.Envelope) *Reply {
	s := NewSession(c)
	r := s.run(ctx, env, nil)
	c.record(&record{phase: string(env.Phase), env: env, start: time.Now().Add(-sum(r.Results)), results: r.Results, verdict: r.Verdict})
	r.outcome.Close()
	r.outcome = nil
	return r
}

func sum(rs []*chain.Result) time.Duration {
	var d time.Duration
	for _, r := range rs {
		d += r.Duration
	}
	return d
}

func cont() *Reply {
	return &Reply{Verdict: verdict.Verdict{Action: verdict.Continue}}
}

// Connect: the client connected from addr, named host ("" or "unknown"
// when it has no verified name).
func (s *Session) Connect(ctx context.Context, host, addr string, macros map[string]string) *Reply {
	s.Abort()
	s.env = stream.Envelope{Phase: "connect", ClientAddr: addr, ClientName: host}
	s.connResults, s.connPending, s.accepted = nil, nil, false
	s.connMacros = map[string]string{}
	merge(s.connMacros, macros)
	return s.connPhase(ctx, "connect")
}

// Helo: the client said HELO or EHLO name.
func (s *Session) Helo(ctx context.Context, name string, macros map[string]string) *Reply {
	s.env.Helo = name
	merge(s.connMacros, macros)
	return s.connPhase(ctx, "helo")
}

func (s *Session) connPhase(ctx context.Context, phase stream.Phase) *Reply {
	if s.accepted || s.connPending != nil {
		return cont()
	}
	env := s.env
	env.Phase = phase
	if s.chain.Any(phase) { // no stage reads them otherwise, nor the record
		env.Macros = macroList(s.connMacros)
	}
	env.QueueID = s.connMacros["i"]
	r := s.run(ctx, env, nil)
	s.env = r.outcome.Env
	s.connResults = append(s.connResults, r.Results...)
	switch a := r.Verdict.Action; {
	case a == verdict.Discard || a == verdict.Quarantine:
		// Only end of data can discard or hold: every message of the
		// connection will be.
		v := r.Verdict
		s.connPending = &v
		r.Verdict.Action = verdict.Continue
	case a.Final():
		s.accepted = a == verdict.Accept
		s.record(phase, nil, r.Verdict, s.takeResults())
	}
	return r
}

// Mail: a transaction starts with sender from ("" for <>).
func (s *Session) Mail(ctx context.Context, from string, macros map[string]string) *Reply {
	s.Abort()
	m := &message{start: time.Now(), mtaFrom: from, macros: map[string]string{}}
	merge(m.macros, macros)
	m.env = s.env
	m.env.MailFrom = from
	m.env.AuthUser = m.macros["{auth_authen}"]
	m.pending = s.connPending
	s.msg = m
	s.cfg.inFlight(1)
	return s.msgPhase(ctx, "mail", "")
}

// Rcpt: the client asks for recipient rcpt.
func (s *Session) Rcpt(ctx context.Context, rcpt string, macros map[string]string) *Reply {
	if s.msg == nil {
		return cont()
	}
	merge(s.msg.macros, macros)
	return s.msgPhase(ctx, "rcpt", rcpt)
}

func (s *Session) msgPhase(ctx context.Context, phase stream.Phase, rcpt string) *Reply {
	m := s.msg
	if s.accepted || m.pending != nil {
		if phase == "rcpt" {
			m.mtaRcpts = append(m.mtaRcpts, rcpt)
			m.env.Rcpts = append(m.env.Rcpts, rcpt)
		}
		return cont()
	}
	env := m.env
	env.Phase = phase
	if s.chain.Any(phase) {
		env.Macros = macroList(s.connMacros, m.macros)
	}
	env.QueueID = m.macros["i"]
	if phase == "rcpt" {
		env.Rcpts = append(append([]string(nil), env.Rcpts...), rcpt)
	}
	r := s.run(ctx, env, nil)
	switch a := r.Verdict.Action; {
	case a == verdict.Reject || a == verdict.Tempfail:
		// At RCPT only this recipient is refused; the stages that ran
		// for it are in its record, not the message's.
		conn := s.connResults
		s.connResults = nil
		s.record(phase, rcptOf(phase, rcpt), r.Verdict, append(conn, r.Results...))
		return r
	case a == verdict.Discard || a == verdict.Quarantine:
		v := r.Verdict
		m.pending = &v
		r.Verdict.Action = verdict.Continue
	case a == verdict.Accept:
		m.results = append(m.results, r.Results...)
		s.record(phase, rcptOf(phase, rcpt), r.Verdict, s.takeResults())
		return r
	}
	m.results = append(m.results, r.Results...)
	m.env = r.outcome.Env // the recipient taken is in it, as the stages left it
	if phase == "rcpt" {
		m.mtaRcpts = append(m.mtaRcpts, rcpt)
	}
	return r
}

func rcptOf(phase stream.Phase, rcpt string) []string {
	if phase == "rcpt" {
		return []string{rcpt}
	}
	return nil
}

// Header: one header field, in order. Folded lines are joined by LF.
func (s *Session) Header(name, value string) {
	if s.msg == nil {
		return
	}
	value = strings.ReplaceAll(value, "\r\n", "\n")
	s.msg.fields = append(s.msg.fields, stream.Field{Name: name, Value: value})
	s.msg.size += int64(len(name) + len(value) + 4)
}

// EOH: the header is complete; the spool starts, if a data stage is to
// read the message.
func (s *Session) EOH() error {
	m := s.msg
	if m == nil || m.eoh {
		return nil
	}
	m.eoh = true
	m.size += 2
	if !s.chain.Any("data") || m.pending != nil || s.accepted {
		return nil
	}
	w := spool.NewWriter(s.cfg.SpoolDir)
	m.spool = w
	for _, fl := range m.fields {
		io.WriteString(w, fl.Name+": "+fl.Value+"\n")
	}
	w.Write([]byte("\n"))
	m.bodyAt = w.Stored()
	return nil
}

// Body: a chunk of the body, CRLF line ends, cut anywhere.
func (s *Session) Body(chunk []byte) error {
	m := s.msg
	if m == nil {
		return nil
	}
	if err := s.EOH(); err != nil {
		return err
	}
	m.size += int64(len(chunk))
	if m.spool == nil {
		return nil
	}
	// CRLF becomes LF, also when a chunk ends between the two.
	m.spool.Write(chunk)
	return nil
}

// Feed hands the session a message as an MTA does: each header field,
// the end of the header, then the body in pieces. first is the start of
// the body that reading the header took (ReadHeader's).
func (s *Session) Feed(fields []stream.Field, first []byte, body io.Reader) error {
	for _, f := range fields {
		s.Header(f.Name, f.Value)
	}
	if err := s.EOH(); err != nil {
		return err
	}
	if err := s.Body(first); err != nil {
		return err
	}
	_, err := spool.Copy(bodyWriter{s}, body)
	return err
}

// bodyWriter is a session's Body as an io.Writer.
type bodyWriter struct{ s *Session }

func (w bodyWriter) Write(p []byte) (int, error) {
	if err := w.s.Body(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// EOM: the message is complete. The data stages run and the reply says
// what to change.
func (s *Session) EOM(ctx context.Context, macros map[string]string) (*Reply, error) {
	m := s.msg
	if m == nil {
		return cont(), nil
	}
	merge(m.macros, macros)
	if err := s.EOH(); err != nil {
		return nil, err
	}
	if m.spool != nil && m.orig == nil {
		msg, err := m.spool.Finish()
		if err != nil {
			return nil, err
		}
		m.orig = msg
	}
	orig := m.orig

	env := m.env
	env.Phase = "data"
	if s.chain.Any("data") {
		env.Macros = macroList(s.connMacros, m.macros)
	}
	env.QueueID = m.macros["i"]
	var r *Reply
	switch {
	case m.pending != nil:
		r = &Reply{Verdict: *m.pending, outcome: &chain.Outcome{Env: env, Message: orig}}
	case s.accepted:
		r = &Reply{Verdict: verdict.Verdict{Action: verdict.Accept}}
	default:
		r = s.run(ctx, env, orig)
	}
	m.results = append(m.results, r.Results...)
	if r.outcome != nil && !r.Verdict.Action.Refuses() && r.Verdict.Action != verdict.Discard {
		if err := s.changes(r); err != nil {
			// What a stage wrote cannot be applied: that is the stage
			// failing, and the message is kept for another try.
			s.cfg.Log.Errorf("%s: %v", queueID(env), err)
			r.Verdict = verdict.New(verdict.Tempfail, verdict.DefaultTempfail)
			r.Edits, r.Body = nil, nil
		}
	}
	final := r.Verdict
	if final.Action == verdict.Continue {
		final.Action = verdict.Accept // no stage objected: the MTA takes it
	}
	if final.Action == verdict.Accept && s.cfg.TraceHeader != "" {
		r.Edits = append(r.Edits, edit.Edit{Kind: edit.AddHeader, Name: s.cfg.TraceHeader, Value: traceValue(s.cfg.Records.hostname(), m.results)})
	}
	if r.outcome != nil {
		r.Sender, r.Rcpts = r.outcome.Env.MailFrom, r.outcome.Env.Rcpts
	} else {
		r.Sender, r.Rcpts = env.MailFrom, env.Rcpts
	}
	r.orig, r.hdr = orig, m.fields
	m.orig = nil // the reply has it now
	s.cfg.record(&record{
		phase: "data", env: env, size: m.size, start: m.start,
		results: s.takeResults(), verdict: final,
	})
	s.finish()
	return r, nil
}

// traceValue is the trace header's value: "mf-bridge on HOST: lists at
// rcpt continue, quota at data continue".
func traceValue(host string, results []*chain.Result) string {
	var b strings.Builder
	b.WriteString("mf-bridge")
	if host == "" {
		host, _ = os.Hostname()
	}
	if host != "" {
		b.WriteString(" on " + host)
	}
	b.WriteString(":")
	if len(results) == 0 {
		b.WriteString(" no stage ran")
	}
	for i, r := range results {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s at %s %s", r.Stage.Name, r.Phase, r.Verdict.Action)
	}
	return b.String()
}

// changes finds what the data stages changed.
func (s *Session) changes(r *Reply) error {
	m, o := s.msg, r.outcome
	var edits []edit.Edit
	if o.Message != nil && o.Message != m.orig {
		after, body, bodyAt, err := split(o.Message)
		if err != nil {
			return fmt.Errorf("message from the stages: %w", err)
		}
		edits = edit.Headers(m.fields, after, s.Hidden)
		origBody, err := m.orig.From(m.bodyAt).Reader()
		if err != nil {
			return err
		}
		same, err := spool.Same(origBody, body)
		if err != nil {
			return err
		}
		if !same {
			r.Body = o.Message.From(bodyAt)
		}
	}
	for _, h := range o.Env.AddHeaders {
		name, value, _ := strings.Cut(h, ":")
		edits = append(edits, edit.Edit{Kind: edit.AddHeader, Name: name, Value: strings.TrimPrefix(value, " ")})
	}
	edits = append(edits, edit.Envelope(m.mtaFrom, o.Env.MailFrom, m.mtaRcpts, o.Env.Rcpts)...)
	r.Edits = edits
	return nil
}

// split reads the header of a spooled message and says where its body
// starts.
func split(msg *spool.Message) ([]stream.Field, io.Reader, int64, error) {
	rd, err := msg.Reader()
	if err != nil {
		return nil, nil, 0, err
	}
	cr := &spool.Counter{R: rd}
	br := bufio.NewReader(cr)
	fields, err := stream.ReadFields(br)
	if err != nil {
		return nil, nil, 0, err
	}
	at := msg.Offset + cr.N - int64(br.Buffered())
	return fields, spool.LF(br), at, nil
}

// Abort: the transaction ends without a message (RSET, QUIT, or an error).
// The stages that ran for it are recorded, with phase "abort", so that
// every stage run is in exactly one decision record.
func (s *Session) Abort() {
	if s.msg != nil && len(s.msg.results) > 0 {
		s.record("abort", nil, verdict.Verdict{Action: verdict.Continue}, s.takeResults())
	}
	s.finish()
}

func (s *Session) finish() {
	if s.msg == nil {
		return
	}
	if s.msg.orig != nil {
		s.msg.orig.Close()
	} else if s.msg.spool != nil {
		s.msg.spool.Close()
	}
	s.msg = nil
	s.cfg.inFlight(-1)
}

// run runs the phase's stages, if any.
func (s *Session) run(ctx context.Context, env stream.Envelope, msg *spool.Message) *Reply {
	if !s.chain.Any(env.Phase) {
		return &Reply{Verdict: verdict.Verdict{Action: verdict.Continue}, outcome: &chain.Outcome{Env: env, Message: msg}}
	}
	o := s.chain.Run(ctx, env, msg)
	for _, res := range o.Results {
		s.cfg.logResult(env, res)
	}
	return &Reply{Verdict: o.Verdict, Results: o.Results, outcome: o}
}

// takeResults hands over the stage runs not yet in a record: each run is
// in exactly one, so counting records counts runs.
func (s *Session) takeResults() []*chain.Result {
	out := s.connResults
	s.connResults = nil
	if s.msg != nil {
		out = append(out, s.msg.results...)
		s.msg.results = nil
	}
	return out
}

// record writes a decision record for an early decision.
func (s *Session) record(phase stream.Phase, rcpt []string, v verdict.Verdict, results []*chain.Result) {
	env := s.env
	start := time.Now()
	if s.msg != nil {
		env, start = s.msg.env, s.msg.start
		env.QueueID = s.msg.macros["i"]
	}
	if len(rcpt) > 0 {
		env.Rcpts = append(append([]string(nil), env.Rcpts...), rcpt...)
	}
	env.Phase = phase
	if len(results) > 0 {
		start = time.Now().Add(-sum(results))
	}
	s.cfg.record(&record{phase: string(phase), env: env, start: start, results: results, verdict: v})
}

func queueID(env stream.Envelope) string {
	if env.QueueID != "" {
		return env.QueueID
	}
	return "NOQUEUE"
}

func merge(dst, src map[string]string) {
	for k, v := range src {
		dst[k] = v
	}
}

// macroList is the macros of the maps in name order, later maps winning.
func macroList(ms ...map[string]string) []stream.Macro {
	all := map[string]string{}
	for _, m := range ms {
		merge(all, m)
	}
	names := make([]string, 0, len(all))
	for k := range all {
		if k != "" && !strings.ContainsAny(k, " ") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]stream.Macro, len(names))
	for i, k := range names {
		out[i] = stream.Macro{Name: k, Value: all[k]}
	}
	return out
}
