package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"mf/lib/chain"
	"mf/lib/edit"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// session is one SMTP connection as the chain sees it: what the MTA said
// at each phase, and what the stages made of it. The milter server and
// "mf-bridge test" drive it the same way, so a test shows what the milter
// would do.
//
// It lives outside go-milter's per-connection object, which the library
// replaces after every final reply.
type session struct {
	b      *bridge
	chain  *chain.Chain
	hidden int // fields the MTA keeps above the header it shows (Postfix's Received:)

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
	fields   []edit.Field     // the header as the MTA showed it, in order
	eoh      bool             // the header is complete
	spool    *os.File         // header and body, LF line ends; nil when no data stage runs
	w        *bufio.Writer
	cr       bool  // the last body chunk ended in CR
	bodyAt   int64 // offset of the body in spool
	size     int64 // bytes as the MTA sent them, CRLF line ends
}

// Reply is what the MTA is told at one phase.
type Reply struct {
	Verdict verdict.Verdict // Continue, Accept, Discard, Reject or Tempfail; Quarantine at EOM
	Results []*chain.Result // the stages that ran at this phase
	Edits   []edit.Edit     // at EOM
	Body    *chain.Message  // a new body (from its first byte), at EOM; nil when unchanged
	outcome *chain.Outcome
}

// Close lets go of spooled files. Call it once the reply has been used.
func (r *Reply) Close() {
	if r.outcome != nil {
		r.outcome.Close()
	}
}

func newSession(b *bridge) *session {
	return &session{b: b, chain: b.chain.Load(), hidden: b.hidden, connMacros: map[string]string{}}
}

// Close ends the connection.
func (s *session) Close() { s.Abort() }

func cont() *Reply {
	return &Reply{Verdict: verdict.Verdict{Action: verdict.Continue}}
}

// Connect: the client connected from addr, named host ("" or "unknown"
// when it has no verified name).
func (s *session) Connect(ctx context.Context, host, addr string, macros map[string]string) *Reply {
	s.Abort()
	s.env = stream.Envelope{Phase: "connect", ClientAddr: addr, ClientName: host}
	s.connResults, s.connPending, s.accepted = nil, nil, false
	s.connMacros = map[string]string{}
	merge(s.connMacros, macros)
	return s.connPhase(ctx, "connect")
}

// Helo: the client said HELO or EHLO name.
func (s *session) Helo(ctx context.Context, name string, macros map[string]string) *Reply {
	s.env.Helo = name
	merge(s.connMacros, macros)
	return s.connPhase(ctx, "helo")
}

func (s *session) connPhase(ctx context.Context, phase stream.Phase) *Reply {
	if s.accepted || s.connPending != nil {
		return cont()
	}
	env := s.env
	env.Phase = phase
	env.Macros = macroList(s.connMacros)
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
func (s *session) Mail(ctx context.Context, from string, macros map[string]string) *Reply {
	s.Abort()
	m := &message{start: time.Now(), mtaFrom: from, macros: map[string]string{}}
	merge(m.macros, macros)
	m.env = s.env
	m.env.MailFrom = from
	m.env.AuthUser = m.macros["{auth_authen}"]
	m.pending = s.connPending
	s.msg = m
	s.b.inFlight.Add(1)
	return s.msgPhase(ctx, "mail", "")
}

// Rcpt: the client asks for recipient rcpt.
func (s *session) Rcpt(ctx context.Context, rcpt string, macros map[string]string) *Reply {
	if s.msg == nil {
		return cont()
	}
	merge(s.msg.macros, macros)
	return s.msgPhase(ctx, "rcpt", rcpt)
}

func (s *session) msgPhase(ctx context.Context, phase stream.Phase, rcpt string) *Reply {
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
	env.Macros = macroList(s.connMacros, m.macros)
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
func (s *session) Header(name, value string) {
	if s.msg == nil {
		return
	}
	value = strings.ReplaceAll(value, "\r\n", "\n")
	s.msg.fields = append(s.msg.fields, edit.Field{Name: name, Value: value})
	s.msg.size += int64(len(name) + len(value) + 4)
}

// EOH: the header is complete; the spool starts, if a data stage is to
// read the message.
func (s *session) EOH() error {
	m := s.msg
	if m == nil || m.eoh {
		return nil
	}
	m.eoh = true
	m.size += 2
	if !s.chain.Any("data") || m.pending != nil || s.accepted {
		return nil
	}
	f, err := os.CreateTemp(s.b.cfg.SpoolDir, "mf-msg-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name()) // the open file is all there is
	m.spool, m.w = f, bufio.NewWriterSize(f, 64<<10)
	for _, fl := range m.fields {
		m.w.WriteString(fl.Name)
		m.w.WriteString(": ")
		m.w.WriteString(fl.Value)
		m.w.WriteByte('\n')
	}
	m.w.WriteByte('\n')
	m.bodyAt = int64(m.w.Buffered())
	return nil
}

// Body: a chunk of the body, CRLF line ends, cut anywhere.
func (s *session) Body(chunk []byte) error {
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
	if m.cr {
		if len(chunk) == 0 || chunk[0] != '\n' {
			m.w.WriteByte('\r')
		}
		m.cr = false
	}
	if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
		chunk, m.cr = chunk[:n-1], true
	}
	for len(chunk) > 0 {
		i := bytes.Index(chunk, []byte("\r\n"))
		if i < 0 {
			m.w.Write(chunk)
			break
		}
		m.w.Write(chunk[:i])
		m.w.WriteByte('\n')
		chunk = chunk[i+2:]
	}
	return nil
}

// EOM: the message is complete. The data stages run and the reply says
// what to change.
func (s *session) EOM(ctx context.Context, macros map[string]string) (*Reply, error) {
	m := s.msg
	if m == nil {
		return cont(), nil
	}
	merge(m.macros, macros)
	if err := s.EOH(); err != nil {
		return nil, err
	}
	var orig *chain.Message
	if m.spool != nil {
		if m.cr {
			m.w.WriteByte('\r')
			m.cr = false
		}
		if err := m.w.Flush(); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		orig = &chain.Message{File: m.spool}
	}

	env := m.env
	env.Phase = "data"
	env.Macros = macroList(s.connMacros, m.macros)
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
	if r.outcome != nil && !refused(r.Verdict) && r.Verdict.Action != verdict.Discard {
		if err := s.changes(r); err != nil {
			// What a stage wrote cannot be applied: that is the stage
			// failing, and the message is kept for another try.
			s.b.log.Errorf("%s: %v", queueID(env), err)
			r.Verdict = verdict.New(verdict.Tempfail, verdict.DefaultTempfail)
			r.Edits, r.Body = nil, nil
		}
	}
	final := r.Verdict
	if final.Action == verdict.Continue {
		final.Action = verdict.Accept // no stage objected: the MTA takes it
	}
	s.b.record(&record{
		phase: "data", env: env, size: m.size, start: m.start,
		results: s.takeResults(), verdict: final,
	})
	s.finish()
	return r, nil
}

func refused(v verdict.Verdict) bool {
	return v.Action == verdict.Reject || v.Action == verdict.Tempfail
}

// changes finds what the data stages changed.
func (s *session) changes(r *Reply) error {
	m, o := s.msg, r.outcome
	var edits []edit.Edit
	if o.Message != nil && o.Message.File != m.spool {
		after, body, bodyAt, err := split(o.Message)
		if err != nil {
			return fmt.Errorf("message from the stages: %w", err)
		}
		edits = edit.Headers(m.fields, after, s.hidden)
		origBody, err := (&chain.Message{File: m.spool, Offset: m.bodyAt}).Reader()
		if err != nil {
			return err
		}
		same, err := sameBody(origBody, body)
		if err != nil {
			return err
		}
		if !same {
			r.Body = &chain.Message{File: o.Message.File, Offset: bodyAt}
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
func split(msg *chain.Message) ([]edit.Field, io.Reader, int64, error) {
	rd, err := msg.Reader()
	if err != nil {
		return nil, nil, 0, err
	}
	cr := &countReader{r: rd}
	br := bufio.NewReader(cr)
	fields, err := edit.ReadFields(br)
	if err != nil {
		return nil, nil, 0, err
	}
	at := msg.Offset + cr.n - int64(br.Buffered())
	return fields, newLF(br), at, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sameBody compares two bodies, the second with CRLF read as LF.
func sameBody(a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !aEnd:
			return false, ea
		case eb != nil && !bEnd:
			return false, eb
		case aEnd || bEnd:
			return aEnd && bEnd, nil
		}
	}
}

// Abort: the transaction ends without a message (RSET, QUIT, or an error).
func (s *session) Abort() { s.finish() }

func (s *session) finish() {
	if s.msg == nil {
		return
	}
	if s.msg.spool != nil {
		s.msg.spool.Close()
	}
	s.msg = nil
	s.b.inFlight.Add(-1)
}

// run runs the phase's stages, if any.
func (s *session) run(ctx context.Context, env stream.Envelope, msg *chain.Message) *Reply {
	if !s.chain.Any(env.Phase) {
		return &Reply{Verdict: verdict.Verdict{Action: verdict.Continue}, outcome: &chain.Outcome{Env: env, Message: msg}}
	}
	o := s.chain.Run(ctx, env, msg)
	for _, res := range o.Results {
		s.b.logResult(env, res)
	}
	return &Reply{Verdict: o.Verdict, Results: o.Results, outcome: o}
}

// takeResults hands over the stage runs not yet in a record: each run is
// in exactly one, so counting records counts runs.
func (s *session) takeResults() []*chain.Result {
	out := s.connResults
	s.connResults = nil
	if s.msg != nil {
		out = append(out, s.msg.results...)
		s.msg.results = nil
	}
	return out
}

// record writes a decision record for an early decision.
func (s *session) record(phase stream.Phase, rcpt []string, v verdict.Verdict, results []*chain.Result) {
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
		start = time.Now()
		for _, r := range results {
			start = start.Add(-r.Duration)
		}
	}
	s.b.record(&record{phase: string(phase), env: env, start: start, results: results, verdict: v})
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

// lf reads r with each CRLF read as LF.
type lf struct {
	br *bufio.Reader
}

func newLF(r io.Reader) io.Reader {
	if br, ok := r.(*bufio.Reader); ok {
		return &lf{br}
	}
	return &lf{bufio.NewReaderSize(r, 64<<10)}
}

func (l *lf) Read(p []byte) (int, error) {
	for {
		n, err := l.br.Read(p)
		w := 0
		for i := 0; i < n; i++ {
			if p[i] == '\r' {
				if i+1 < n && p[i+1] == '\n' {
					continue
				}
				if i+1 == n {
					if next, e := l.br.Peek(1); e == nil && next[0] == '\n' {
						continue
					}
				}
			}
			p[w] = p[i]
			w++
		}
		if w > 0 || n == 0 || err != nil {
			return w, err
		}
	}
}
