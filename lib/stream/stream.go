// Package stream reads and writes the mf stream: an envelope block in RFC
// 5322 header syntax, a blank line, then the message bytes, untouched.
//
// The envelope comes from the network and is hostile: every value is
// percent-encoded where it holds a byte that could end a field or the block
// (see Encode), so no value can inject a field. The message is never parsed
// or re-encoded here; it is handed on byte for byte.
package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"

	"mf/lib/verdict"
)

// Version is the only Mf-Stream version this package reads and writes.
const Version = "1"

// MaxEnvelope bounds the envelope block, so a stream that never ends its
// block cannot make a stage read without limit.
const MaxEnvelope = 1 << 20

// Phase is an SMTP phase, at which the MTA asks the chain: the word
// "stage" means a program of the chain, never this.
type Phase string

// The phases, in SMTP order. Before Data the stream carries no message.
const (
	Connect Phase = "connect"
	Helo    Phase = "helo"
	Mail    Phase = "mail"
	Rcpt    Phase = "rcpt"
	Data    Phase = "data"
)

// Phases are all phases in SMTP order.
var Phases = []Phase{Connect, Helo, Mail, Rcpt, Data}

// ParsePhase reads a phase name.
func ParsePhase(s string) (Phase, error) {
	for _, p := range Phases {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown phase %q (want one of %s)", s, phaseList())
}

func phaseList() string {
	names := make([]string, len(Phases))
	for i, p := range Phases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// Before reports whether p comes before q in a transaction.
func (p Phase) Before(q Phase) bool { return p.index() < q.index() }

func (p Phase) index() int {
	for i, n := range Phases {
		if n == p {
			return i
		}
	}
	return -1
}

// Macro is an MTA macro ("{tls_version}", "j") and its value.
type Macro struct{ Name, Value string }

// Envelope is the SMTP transaction a message came in with, plus what the
// stages before this one said about it.
type Envelope struct {
	Phase      Phase
	QueueID    string
	ClientAddr string
	ClientName string
	Helo       string
	AuthUser   string
	MailFrom   string   // without angle brackets; "" is the null sender
	Rcpts      []string // without angle brackets, in order; at rcpt the last is being decided on
	Macros     []Macro
	Verdict    *verdict.Verdict // set once a stage has decided
	AddHeaders []string         // "Name: value" fields to add once the message exists
	Trace      []string         // one line per stage that ran
}

// HasMessage reports whether message bytes follow the envelope.
func (e *Envelope) HasMessage() bool { return e.Phase == Data }

// CurrentRcpts are the recipients a stage decides on: at rcpt only the
// last one, at data all of them.
func (e *Envelope) CurrentRcpts() []string {
	if e.Phase == Rcpt && len(e.Rcpts) > 0 {
		return e.Rcpts[len(e.Rcpts)-1:]
	}
	return e.Rcpts
}

// Stream is a parsed envelope and the reader positioned at the first byte
// of the message.
type Stream struct {
	Env Envelope
	// Raw is the envelope block exactly as read, blank line included; nil
	// when the input was a bare message.
	Raw []byte
	// Message reads the message bytes, untouched.
	Message *bufio.Reader
	// Whole is the message as a File, when it was given as one (see
	// File); nil from a pipe.
	Whole File
}

// A File is a message that can be read at any offset as well as from
// its start, as the one a stage inside mf-bridge is handed (a section
// of the bridge's spool file): a stage that wants the whole message
// more than once reads it there, rather than spooling a copy.
type File interface {
	io.Reader
	io.ReaderAt
	Size() int64
}

// Close gives the stream's read buffer back for the next stream read in
// this process (a stage inside mf-bridge reads several per message); the
// stream, Message included, is not to be used after. A stream never
// closed costs only the garbage collector's work.
func (s *Stream) Close() {
	if br := s.Message; br != nil && br.Size() == bufSize {
		s.Message = nil
		br.Reset(nil)
		readers.Put(br)
	}
}

// bufSize is the buffer of a stream's reader: the envelope block and a
// message header are read from it line by line.
const bufSize = 64 << 10

// readers are read buffers given back by Close.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}

// Final reports whether a stage before this one already decided.
func (s *Stream) Final() bool { return s.Env.Verdict != nil && s.Env.Verdict.Action.Final() }

// WriteEnvelope writes the envelope block: as it was read while Raw is
// kept, anew from Env once a stage has cleared Raw to change it.
func (s *Stream) WriteEnvelope(w io.Writer) error {
	raw, err := s.Block()
	if err != nil {
		return err
	}
	_, err = w.Write(raw)
	return err
}

// Block is the envelope block WriteEnvelope writes.
func (s *Stream) Block() ([]byte, error) {
	if s.Raw != nil {
		return s.Raw, nil
	}
	var b bytes.Buffer
	if err := Write(&b, &s.Env); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Input says how to take what arrives on stdin.
type Input int

const (
	AutoInput    Input = iota // a stream if it starts with "Mf-Stream:", else a bare message
	StreamInput               // must be a stream
	MessageInput              // always a bare message, even if it looks like a stream
)

const magic = "mf-stream:"

// IsStream reports whether br starts with an envelope block. It only peeks.
func IsStream(br *bufio.Reader) bool {
	p, _ := br.Peek(len(magic))
	return strings.EqualFold(string(p), magic)
}

// Read reads a stream from r. When the input is a bare message (no
// "Mf-Stream:" first line, or in is MessageInput), the envelope is bare, which the
// caller has filled from flags or the environment. A Handover's envelope
// is taken as it is handed over.
func Read(r io.Reader, in Input, bare Envelope) (*Stream, error) {
	if h, ok := r.(Handover); ok && in != MessageInput {
		if env, raw, msg, ok := h.Stream(); ok {
			br := readers.Get().(*bufio.Reader)
			br.Reset(msg)
			f, _ := msg.(File)
			return &Stream{Env: env, Raw: raw, Message: br, Whole: f}, nil
		}
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	if in == MessageInput || (in == AutoInput && !IsStream(br)) {
		if bare.Phase == "" {
			bare.Phase = Data
		}
		if !bare.HasMessage() {
			// Before DATA there is no message: stdin is not passed on
			// after an envelope-only block.
			br.Reset(strings.NewReader(""))
			return &Stream{Env: bare, Message: br}, nil
		}
		// The whole of r is the message: given as a File, it is one.
		f, _ := r.(File)
		return &Stream{Env: bare, Message: br, Whole: f}, nil
	}
	raw, err := envelopeBlock(br, MaxEnvelope)
	if err != nil {
		return nil, err
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		return nil, err
	}
	return &Stream{Env: *env, Raw: raw, Message: br}, nil
}

// envelopeBlock reads the envelope block: lines up to and including the
// first empty one, which must come within max bytes.
func envelopeBlock(br *bufio.Reader, max int) ([]byte, error) {
	raw, _, end, err := readBlock(br, max, nil)
	switch {
	case err != nil:
		return nil, err
	case end == endMax:
		return nil, fmt.Errorf("envelope block longer than %d bytes", max)
	case end != endBlank:
		return nil, errors.New("envelope block not ended by an empty line")
	}
	return raw, nil
}

// ParseEnvelope parses an envelope block (blank line included or not).
func ParseEnvelope(raw []byte) (*Envelope, error) {
	h, err := textproto.ReadHeader(memReader(raw))
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	env := &Envelope{}
	seen := map[string]bool{}
	line := 0
	fields := h.Fields()
	for fields.Next() {
		line++
		key := fields.Key()
		val, err := Decode(fields.Value())
		if err != nil {
			return nil, fmt.Errorf("envelope line %d: %s: %w", line, key, err)
		}
		if err := env.set(key, val, seen); err != nil {
			return nil, fmt.Errorf("envelope line %d: %s: %w", line, key, err)
		}
	}
	if !seen["Mf-Stream"] {
		return nil, errors.New("envelope: no Mf-Stream field")
	}
	if !seen["Mf-Stage"] {
		return nil, errors.New("envelope: no Mf-Stage field")
	}
	return env, nil
}

func (env *Envelope) set(key, val string, seen map[string]bool) error {
	switch key {
	case "Mf-Rcpt-To", "Mf-Macro", "Mf-Trace", "Mf-Add-Header":
	default:
		if seen[key] {
			return errors.New("given twice")
		}
	}
	seen[key] = true
	switch key {
	case "Mf-Stream":
		if val != Version {
			return fmt.Errorf("version %q not understood (want %s)", val, Version)
		}
		if len(seen) != 1 {
			return errors.New("must be the first field")
		}
	case "Mf-Stage":
		p, err := ParsePhase(val)
		if err != nil {
			return err
		}
		env.Phase = p
	case "Mf-Queue-Id":
		env.QueueID = val
	case "Mf-Client-Addr":
		env.ClientAddr = val
	case "Mf-Client-Name":
		env.ClientName = val
	case "Mf-Helo":
		env.Helo = val
	case "Mf-Auth-User":
		env.AuthUser = val
	case "Mf-Mail-From":
		env.MailFrom = Unbracket(val)
	case "Mf-Rcpt-To":
		env.Rcpts = append(env.Rcpts, Unbracket(val))
	case "Mf-Macro":
		name, value, _ := strings.Cut(val, " ")
		if name == "" {
			return errors.New("no macro name")
		}
		env.Macros = append(env.Macros, Macro{name, value})
	case "Mf-Verdict":
		v, err := verdict.Parse(val)
		if err != nil {
			return err
		}
		env.Verdict = &v
	case "Mf-Add-Header":
		if err := checkField(val); err != nil {
			return err
		}
		env.AddHeaders = append(env.AddHeaders, val)
	case "Mf-Trace":
		env.Trace = append(env.Trace, val)
	default:
		return errors.New("unknown field")
	}
	return nil
}

// checkField accepts "Name: value" with a printable field name.
func checkField(f string) error {
	name, _, ok := strings.Cut(f, ":")
	if !ok || name == "" {
		return errors.New(`want "Name: value"`)
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] >= 0x7f {
			return fmt.Errorf("bad header field name %q", name)
		}
	}
	return nil
}

// Unbracket strips one pair of angle brackets and surrounding space.
func Unbracket(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

// Write writes env as an envelope block, fields in a fixed order, blank
// line included. The caller writes the message after it.
func Write(w io.Writer, env *Envelope) error {
	var b bytes.Buffer
	b.Grow(1 << 10) // a block with an MTA's macros: grown from 64 bytes, five allocations
	field := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(Encode(v))
		b.WriteByte('\n')
	}
	field("Mf-Stream", Version)
	phase := env.Phase
	if phase == "" {
		phase = Data
	}
	field("Mf-Stage", string(phase))
	opt := func(k, v string) {
		if v != "" {
			field(k, v)
		}
	}
	opt("Mf-Queue-Id", env.QueueID)
	opt("Mf-Client-Addr", env.ClientAddr)
	opt("Mf-Client-Name", env.ClientName)
	opt("Mf-Helo", env.Helo)
	opt("Mf-Auth-User", env.AuthUser)
	if !phase.Before(Mail) || env.MailFrom != "" {
		field("Mf-Mail-From", "<"+env.MailFrom+">")
	}
	for _, r := range env.Rcpts {
		field("Mf-Rcpt-To", "<"+r+">")
	}
	for _, m := range env.Macros {
		// The name ends at the first space: a name that is empty or holds
		// one would be read back as another macro, or not at all.
		if m.Name == "" || strings.Contains(m.Name, " ") {
			return fmt.Errorf("macro name %q is empty or holds a space", m.Name)
		}
		if m.Value == "" {
			field("Mf-Macro", m.Name) // no space: nothing to take for part of the name
		} else {
			field("Mf-Macro", m.Name+" "+m.Value)
		}
	}
	if env.Verdict != nil {
		field("Mf-Verdict", env.Verdict.String())
	}
	for _, h := range env.AddHeaders {
		field("Mf-Add-Header", h)
	}
	for _, t := range env.Trace {
		field("Mf-Trace", t)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
