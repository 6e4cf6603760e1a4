package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"

	"github.com/emersion/go-milter"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/edit"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// The edits mf-bridge may ask for. Postfix and sendmail offer them all
// (which steps are skipped or go without a reply: see protocol).
const actions = milter.OptAddHeader | milter.OptChangeHeader | milter.OptChangeBody |
	milter.OptAddRcpt | milter.OptRemoveRcpt | milter.OptQuarantine | milter.OptChangeFrom

// protocol asks the MTA to leave out what no stage will read, and not to
// wait for a reply where none but continue can come. Without a data stage
// neither the header nor the body is needed (fields added at earlier
// phases are appended, which needs no header), and Postfix sends each
// header field as a packet of its own and waits for its reply: not
// sending them saves a round trip per field and per body chunk. The
// decision record then has no size. A step with no stage at its phase
// always continues, and header fields, their end and body chunks are
// only spooled (a spool failure is told at end of message), so where the
// MTA offers it (offered, from its option negotiation) the bridge gives
// them no reply and the MTA does not wait: with no stage before data,
// end of message is the only step that waits.
func protocol(ch *chain.Chain, offered milter.OptProtocol) milter.OptProtocol {
	p := offered & (milter.OptNoHeaderReply | milter.OptNoEOHReply | milter.OptNoBodyReply)
	if !ch.Any(stream.Data) {
		p = milter.OptNoHeaders | milter.OptNoEOH | milter.OptNoBody
	}
	for _, s := range silentSteps {
		if offered&s.flag != 0 && !ch.Any(s.phase) {
			p |= s.flag
		}
	}
	return p
}

// silentSteps are the envelope steps that may go without a reply, with
// the phase whose stages would answer them.
var silentSteps = []struct {
	flag  milter.OptProtocol
	phase stream.Phase
}{
	{milter.OptNoConnReply, "connect"},
	{milter.OptNoHeloReply, "helo"},
	{milter.OptNoMailReply, "mail"},
	{milter.OptNoRcptReply, "rcpt"},
}

// offered is the protocol mask in the MTA's option negotiation, its first
// packet (length, 'O', version, actions, protocol), peeked at so that
// go-milter still reads it; 0 when the first packet is not one.
func offered(r *bufio.Reader) milter.OptProtocol {
	b, err := r.Peek(17)
	if err != nil || b[4] != 'O' || binary.BigEndian.Uint32(b) < 13 {
		return 0
	}
	return milter.OptProtocol(binary.BigEndian.Uint32(b[13:]))
}

// serveConn speaks milter on one MTA connection until it closes. Each
// connection gets a go-milter server of its own whose milter objects,
// however often the library makes new ones, all work on the one session.
func (srv *server) serveConn(ctx context.Context, conn net.Conn) {
	g := srv.acquire()
	defer g.release()
	s := bridge.NewSession(g.cfg)
	defer s.Close()
	ln := &oneConn{done: make(chan struct{})}
	ln.conn = &closeNotify{Conn: conn, l: ln, r: bufio.NewReaderSize(&ackReader{c: conn}, 4<<10)}
	p := protocol(g.cfg.Chain, offered(ln.conn.r))
	m := &milter.Server{
		NewMilter: func() milter.Milter { return &backend{ctx: ctx, s: s, g: g, silent: p} },
		Actions:   actions,
		Protocol:  p,
	}
	m.Serve(ln)
}

// oneConn is a listener that hands out one connection, then waits for it
// to close, so Serve returns when the session ends.
type oneConn struct {
	conn   *closeNotify
	done   chan struct{}
	handed bool
	once   sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.handed {
		l.handed = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }

// closeNotify also reads through a buffer: go-milter reads a packet's
// length and its body with a system call each, and the MTA often sends a
// macro packet and its command together (with no reply to wait for, a
// whole envelope). A body chunk larger than the buffer is read past it.
type closeNotify struct {
	net.Conn
	l *oneConn
	r *bufio.Reader
}

func (c *closeNotify) Read(p []byte) (int, error) { return c.r.Read(p) }

// ackReader reads the connection and acknowledges each read at once (see
// quickAck), until the MTA says it is Postfix: Postfix writes each milter
// packet whole and waits for no ACK, and a system call per read was a
// twentieth of the bridge's CPU beside it. The bridge's replies go out at
// once too, as TCP_NODELAY is Go's default.
type ackReader struct {
	c       net.Conn
	postfix bool
}

// postfixVersion is how Postfix's connect macros name it ("v", the mail
// version: "Postfix 3.7.11").
var postfixVersion = []byte("v\x00Postfix")

func (a *ackReader) Read(p []byte) (int, error) {
	n, err := a.c.Read(p)
	if n > 0 && !a.postfix {
		if a.postfix = bytes.Contains(p[:n], postfixVersion); !a.postfix {
			quickAck(a.c)
		}
	}
	return n, err
}

func (c *closeNotify) Close() error {
	err := c.Conn.Close()
	c.l.once.Do(func() { close(c.l.done) })
	return err
}

// backend turns go-milter's callbacks into session calls.
type backend struct {
	ctx    context.Context
	s      *bridge.Session
	g      *generation
	silent milter.OptProtocol // the protocol negotiated: steps given no reply
	failed error              // spooling the message failed at a step given none
}

// answer is the reply to a step, or none where the MTA was told not to
// wait for one (a nil response: go-milter then writes nothing).
func (m *backend) answer(step milter.OptProtocol, r *bridge.Reply, mod *milter.Modifier) (milter.Response, error) {
	if m.silent&step != 0 {
		return nil, nil
	}
	return m.reply(r, mod)
}

func (m *backend) Connect(host, family string, port uint16, addr net.IP, mod *milter.Modifier) (milter.Response, error) {
	s := m.s
	if m.g.cli.MTA == "auto" {
		s.Hidden = hidden(mod.Macros)
	}
	a := ""
	if addr != nil {
		a = addr.String()
	}
	// Postfix names a client without a verified name [addr].
	if host == "" || strings.HasPrefix(host, "[") {
		host = "unknown"
	}
	return m.answer(milter.OptNoConnReply, s.Connect(m.ctx, host, a, mod.Macros), mod)
}

func (m *backend) Helo(name string, mod *milter.Modifier) (milter.Response, error) {
	return m.answer(milter.OptNoHeloReply, m.s.Helo(m.ctx, name, mod.Macros), mod)
}

func (m *backend) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	return m.answer(milter.OptNoMailReply, m.s.Mail(m.ctx, from, mod.Macros), mod)
}

func (m *backend) RcptTo(rcpt string, mod *milter.Modifier) (milter.Response, error) {
	return m.answer(milter.OptNoRcptReply, m.s.Rcpt(m.ctx, rcpt, mod.Macros), mod)
}

func (m *backend) Header(name, value string, mod *milter.Modifier) (milter.Response, error) {
	m.s.Header(name, value)
	return m.spooled(milter.OptNoHeaderReply, nil)
}

func (m *backend) Headers(h textproto.MIMEHeader, mod *milter.Modifier) (milter.Response, error) {
	return m.spooled(milter.OptNoEOHReply, m.s.EOH())
}

func (m *backend) BodyChunk(chunk []byte, mod *milter.Modifier) (milter.Response, error) {
	return m.spooled(milter.OptNoBodyReply, m.s.Body(chunk))
}

// spooled answers a step of the message's content: continue, or tempfail
// when spooling failed; where the step gets no reply the failure waits
// for end of message.
func (m *backend) spooled(step milter.OptProtocol, err error) (milter.Response, error) {
	if err != nil && m.failed == nil {
		m.g.cfg.Log.Errorf("%v", err)
		m.failed = err
	}
	switch {
	case m.silent&step != 0:
		return nil, nil
	case m.failed != nil:
		return tempfail(), nil
	}
	return milter.RespContinue, nil
}

func (m *backend) Body(mod *milter.Modifier) (milter.Response, error) {
	if m.failed != nil {
		m.failed = nil
		m.s.Abort()
		return tempfail(), nil
	}
	r, err := m.s.EOM(m.ctx, mod.Macros)
	if err != nil {
		m.g.cfg.Log.Errorf("%v", err)
		m.s.Abort()
		return tempfail(), nil
	}
	defer r.Close()
	if err := apply(r, mod); err != nil {
		// The MTA went away mid-edit: nothing more can be said.
		return nil, err
	}
	if r.Verdict.Action == verdict.Continue {
		return milter.RespAccept, nil // no stage objected
	}
	return m.reply(r, mod)
}

func (m *backend) Abort(mod *milter.Modifier) error {
	m.failed = nil
	m.s.Abort()
	return nil
}

// reply maps a verdict to a milter reply. Refusals go as reply codes, so
// the stage's text reaches the client.
func (m *backend) reply(r *bridge.Reply, mod *milter.Modifier) (milter.Response, error) {
	v := r.Verdict
	switch v.Action {
	case verdict.Accept, verdict.Quarantine:
		return milter.RespAccept, nil
	case verdict.Discard:
		return milter.RespDiscard, nil
	case verdict.Reject, verdict.Tempfail:
		return milter.NewResponseStr('y', smtpReply(v.Reply)), nil
	}
	return milter.RespContinue, nil
}

// hidden is how many header fields the MTA keeps above the header it
// shows a milter and counts in insert indexes: its own Received:, for
// Postfix and sendmail alike (PROTOCOLS.md §12). Postfix says so in macro
// v ("Postfix 3.7.11"); sendmail sends no v by default but always _ and j
// at connect, and v is its version number where it is configured.
func hidden(macros map[string]string) int {
	v := macros["v"]
	switch {
	case strings.HasPrefix(v, "Postfix"), v != "" && v[0] >= '0' && v[0] <= '9':
		return 1
	case v == "" && macros["_"] != "" && macros["j"] != "":
		return 1
	}
	return 0
}

// smtpReply is the reply as the MTA takes it: sendmail reads '%' as a
// format character, and Postfix undoes the doubling.
func smtpReply(r verdict.Reply) string {
	return strings.ReplaceAll(r.String(), "%", "%%")
}

func tempfail() milter.Response {
	return milter.NewResponseStr('y', smtpReply(verdict.DefaultTempfail))
}

// apply sends the edits of an end-of-message reply. The body goes last,
// in pieces of at most 65535 bytes with nothing between them, as both
// sendmail and Postfix require.
func apply(r *bridge.Reply, mod *milter.Modifier) error {
	for _, e := range r.Edits {
		var err error
		switch e.Kind {
		case edit.AddHeader:
			err = mod.AddHeader(e.Name, e.Value)
		case edit.InsertHeader:
			err = mod.InsertHeader(e.Index, e.Name, e.Value)
		case edit.ChangeHeader:
			err = mod.ChangeHeader(e.Index, e.Name, e.Value)
		case edit.DeleteHeader:
			err = mod.ChangeHeader(e.Index, e.Name, "")
		case edit.ChangeFrom:
			err = mod.ChangeFrom("<" + e.Value + ">")
		case edit.AddRcpt:
			err = mod.AddRecipient(e.Value)
		case edit.DeleteRcpt:
			err = mod.DeleteRecipient(e.Value)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
	}
	if r.Verdict.Action == verdict.Quarantine {
		if err := mod.Quarantine(r.Verdict.Reply.Text); err != nil {
			return err
		}
	}
	if r.Body == nil {
		return nil
	}
	rd, err := r.Body.Reader()
	if err != nil {
		return err
	}
	body := spool.LF(rd)
	buf := make([]byte, milter.MaxBodyChunk)
	sent := false
	for {
		n, err := io.ReadFull(body, buf)
		if n > 0 || !sent {
			if err := mod.ReplaceBody(buf[:n]); err != nil {
				return err
			}
			sent = true
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
