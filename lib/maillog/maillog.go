// Package maillog turns one line of a mail log into an Event: Postfix,
// sendmail and qmail lines (syslog or multilog) and mf-bridge decision records.
package maillog

import (
	"bytes"
	"time"
)

// Kind is what a line says happened.
type Kind uint8

const (
	None          Kind = iota
	Received           // a message entered the queue: from a client (Client) or a local submission
	Queued             // the queue manager took a message: sender (From) and Size
	Delivered          // one recipient delivered (Addr), with Relay, Delay, Reason
	Forwarded          // one recipient delivered by forwarding it to another address
	Deferred           // one delivery attempt failed temporarily
	Bounced            // one recipient failed permanently
	Rejected           // refused for good (5xx) during SMTP or by header/body checks or a milter
	Tempfailed         // refused for now (4xx): the client is to try again
	RejectWarning      // a restriction in warn mode that would have rejected
	Held               // put on hold
	Discarded          // accepted and thrown away
	Removed            // the message left the queue
	Start              // qmail: delivery Ref of message QID to Addr begins
	Verdict            // an mf-bridge decision record (Record)
	Problem            // a warning, error, fatal or panic of a mail program (Class: its kind, Reason: the text)
)

var kindNames = [...]string{"none", "received", "queued", "delivered", "forwarded", "deferred", "bounced", "rejected", "tempfailed", "reject-warning", "held", "discarded", "removed", "start", "verdict", "problem"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// MTA names the software that wrote a line.
type MTA uint8

const (
	Postfix MTA = iota + 1
	Sendmail
	Qmail
	Bridge
)

func (m MTA) String() string {
	switch m {
	case Postfix:
		return "postfix"
	case Sendmail:
		return "sendmail"
	case Qmail:
		return "qmail"
	case Bridge:
		return "mf"
	}
	return "unknown"
}

// Event is what one line reports. Byte fields point into the line: they
// are valid as long as the line's buffer is, and cost no allocation.
type Event struct {
	Time   time.Time
	Kind   Kind
	MTA    MTA
	Host   []byte // the machine that logged the line, for joining queue ids
	Prog   []byte // the program that logged it ("postfix/smtpd", "sm-mta", "qmail")
	QID    []byte // queue id (qmail: message number)
	Client []byte // SMTP client "name[addr]", or "pickup"/"local" for local submission
	From   []byte // envelope sender
	Addr   []byte // recipient
	Relay  []byte // where a delivery went
	Reason []byte // reply or status text of a delivery, reject reason
	Class  []byte // reject: the restriction that fired ("Relay access denied", "blocked using zen.example")
	Next   []byte // queued-as id of a hand-off to a local content filter
	Ref    []byte // qmail delivery number
	Size   int64  // message bytes, -1 when the line does not say
	N      int    // recipients the line stands for: sendmail lists several in one to=
	Delay  float64
	Record *Record // Verdict only

	// Sendmail logs "<x@y>... User unknown" both for a recipient it
	// refuses at RCPT and as the reason of a failed delivery; only a
	// message not yet queued can have been refused.
	UnlessQueued bool
}

func (e *Event) reset() {
	*e = Event{Size: -1, Delay: -1, N: 1}
}

// Result classifies a line.
type Result uint8

const (
	Unparsed     Result = iota // no log format understood, or a mail line cut short
	Foreign                    // a log line of a program that is not a mail transport
	Known                      // a mail line with nothing to count (connect, statistics, ...)
	HasEvent                   // ev holds an event
	Unrecognized               // a line of a mail program that no parser understood: nothing counted, listed by --unparsed
)

// knownPrefix reports whether msg starts with one of prefixes: the lines
// a parser understands as saying nothing to count.
func knownPrefix(msg []byte, prefixes []string) bool {
	for _, p := range prefixes {
		if hasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Parser reads lines. The zero value is not ready: use NewParser.
type Parser struct {
	loc *time.Location
	now time.Time

	// The classic syslog time of the last line, as two words (bytes 0-7
	// and 7-14: two compares tell a line of the same second), and its value.
	lastStamp [2]uint64
	lastTime  time.Time

	skip [Bridge + 1]bool
}

// Only makes lines of other MTAs Foreign before their messages are read.
func (p *Parser) Only(ms ...MTA) {
	for m := range p.skip {
		p.skip[m] = true
	}
	for _, m := range ms {
		p.skip[m] = false
	}
}

// NewParser reads times without a zone in loc; classic syslog lines,
// which carry no year, get the year that puts them not after now
// (with a day's grace for clocks that disagree).
func NewParser(loc *time.Location, now time.Time) *Parser {
	return &Parser{loc: loc, now: now}
}

// Parse reads one line (without its newline) into ev.
func (p *Parser) Parse(line []byte, ev *Event) Result {
	// ev is reset only for lines of a mail program: clearing it for every
	// line of a long log costs more than reading most of them.
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return Unparsed
	}
	var h header
	switch line[0] {
	case '{':
		if bytes.Contains(line, []byte(`"__REALTIME_TIMESTAMP"`)) {
			var ok bool
			if h, ok = journal(line); !ok {
				return Unparsed
			}
			break
		}
		if p.skip[Bridge] {
			return Foreign
		}
		ev.reset()
		return parseRecord(line, ev)
	case '@':
		if p.skip[Qmail] {
			return Foreign
		}
		t, rest, ok := tai64n(line)
		if !ok {
			return Unparsed
		}
		ev.reset()
		ev.Time = t
		ev.Prog = qmailProg
		return parseQmail(rest, ev)
	default:
		if t, rest, ok := p.tai64nlocal(line); ok { // multilog piped through tai64nlocal
			if p.skip[Qmail] {
				return Foreign
			}
			ev.reset()
			ev.Time = t
			ev.Prog = qmailProg
			return parseQmail(rest, ev)
		}
		if !p.header(line, &h) {
			return Unparsed
		}
	}
	var r Result
	switch {
	case hasPrefix(h.prog, "postfix") && !p.skip[Postfix]:
		ev.reset()
		r = parsePostfix(h.prog, h.msg, ev)
	case isSendmail(h.prog) && !p.skip[Sendmail]:
		ev.reset()
		r = parseSendmail(h.msg, ev)
	case isQmail(h.prog) && !p.skip[Qmail]:
		ev.reset()
		r = parseQmailSyslog(h.prog, h.msg, ev)
	case string(h.prog) == "mf-bridge" && !p.skip[Bridge]:
		ev.reset()
		switch m := bytes.TrimPrefix(h.msg, []byte("mf-bridge: ")); {
		case len(m) > 0 && m[0] == '{':
			r = parseRecord(m, ev)
		case problem(m, ev):
			ev.MTA = Bridge
			r = HasEvent
		default:
			r = Known
		}
	default:
		return Foreign
	}
	if r == HasEvent && ev.Time.IsZero() {
		var ok bool
		if ev.Time, ok = p.stamp(&h); !ok {
			return Unparsed
		}
	}
	if r == HasEvent && ev.Host == nil {
		ev.Host = h.host
	}
	if r == HasEvent {
		ev.Prog = h.prog
	}
	return r
}

var qmailProg = []byte("qmail")

// tai64nlocal reads the "2026-11-22 10:00:00.123456789 " that
// tai64nlocal puts in place of multilog's label: local time.
func (p *Parser) tai64nlocal(line []byte) (time.Time, []byte, bool) {
	if len(line) < 21 || line[4] != '-' || line[7] != '-' || line[10] != ' ' || line[13] != ':' || line[16] != ':' || line[0] < '0' || line[0] > '9' {
		return time.Time{}, nil, false
	}
	i := bytes.IndexByte(line[11:], ' ')
	if i < 0 {
		return time.Time{}, nil, false
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", string(line[:11+i]), p.loc)
	if err != nil {
		return time.Time{}, nil, false
	}
	return t, line[12+i:], true
}

func isSendmail(prog []byte) bool {
	switch string(prog) {
	case "sendmail", "sm-mta", "sm-msp-queue", "sm-msp":
		return true
	}
	return false
}

func isQmail(prog []byte) bool {
	switch string(prog) {
	case "qmail", "qmail-send", "qmail-smtpd", "rblsmtpd", "tcpserver", "splogger":
		return true
	}
	return false
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// after returns what follows the first key in b, and whether key occurs.
func after(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	return b[i+len(key):], true
}

// upto cuts b at the first c (all of b when there is none).
func upto(b []byte, c byte) []byte {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return b[:i]
	}
	return b
}

// value returns the text after key up to the byte end.
func value(b []byte, key string, end byte) ([]byte, bool) {
	v, ok := after(b, key)
	if !ok {
		return nil, false
	}
	return upto(v, end), true
}

// number reads a leading decimal integer.
func number(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 18; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}

// seconds reads "12", "0.5" or "46621.3".
func seconds(b []byte) (float64, bool) {
	n, ok := number(b)
	if !ok {
		return 0, false
	}
	f := float64(n)
	i := bytes.IndexFunc(b, func(r rune) bool { return r < '0' || r > '9' })
	if i >= 0 && b[i] == '.' {
		scale := 0.1
		for _, c := range b[i+1:] {
			if c < '0' || c > '9' {
				break
			}
			f += float64(c-'0') * scale
			scale /= 10
		}
	}
	return f, true
}

// Domain is the part of an address after the last @, or the whole address
// when it has none.
func Domain(addr []byte) []byte {
	if i := bytes.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// ClientHost is the host part of "name[addr]": the name unless it is
// "unknown", then the address.
func ClientHost(c []byte) []byte {
	c = bytes.TrimSpace(c)
	if i := bytes.LastIndexByte(c, '@'); i >= 0 { // sendmail's "user@host" of a local submission
		c = c[i+1:]
	}
	i := bytes.IndexByte(c, '[')
	if i < 0 {
		return c
	}
	name := bytes.TrimSpace(c[:i])
	if len(name) == 0 || string(name) == "unknown" {
		return upto(c[i+1:], ']')
	}
	return name
}

// problemKinds are the prefixes by which mail programs say something
// went wrong (Postfix's msg_warn, msg_error, msg_fatal, msg_panic; qmail's
// alert; mf's logger).
var problemKinds = [...]string{"warning", "error", "fatal", "panic", "alert"}

// problem reads "warning: text", "fatal: text", ... into a Problem event.
func problem(msg []byte, ev *Event) bool {
	if len(msg) == 0 {
		return false
	}
	// The kinds begin with different letters: most lines are none of
	// them, told by their first byte. Every line of Postfix asks.
	var k string
	switch msg[0] {
	case 'w':
		k = problemKinds[0]
	case 'e':
		k = problemKinds[1]
	case 'f':
		k = problemKinds[2]
	case 'p':
		k = problemKinds[3]
	case 'a':
		k = problemKinds[4]
	default:
		return false
	}
	if len(msg) > len(k)+1 && string(msg[:len(k)]) == k && msg[len(k)] == ':' && msg[len(k)+1] == ' ' {
		ev.Kind = Problem
		ev.Class = msg[:len(k)]
		ev.Reason = msg[len(k)+2:]
		return true
	}
	return false
}
