// Package stage is the stage side of the mf protocol, written once: a
// stage command is its flags and one decide function, and Run does the
// reading, the passing on of decided streams, the output, the trace and
// --dry-run.
package stage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Flags are embedded in a stage command's check sub-command.
type Flags struct {
	stream.Flags
	Output   string `enum:"stream,message,none" default:"stream" help:"What to write on stdout: the stream (filter mode, for the next stage or mf-bridge), the message alone (for procmail or maildrop), or nothing (the exit status says it all)."`
	DryRun   bool   `help:"Decide and report, but change no state and refuse nothing: the verdict is logged and traced as \"would ACTION\", the exit status is 0."`
	ReadOnly bool   `help:"Decide, refuse and report as usual, but change no state (counts, dynamic entries): what mf-bridge test gives its stages (MF_READ_ONLY=true)."`

	// Log, when set, is told why a stage decided (Decision.Reason).
	Log func(format string, args ...any) `kong:"-"`
}

// Message is what a decide function looks at. The message is read only
// as far as the function asks: Header reads the header block, Open the
// whole message, once, into a spool file, unless it came as a file
// (stream.File), which is then read where it is.
type Message struct {
	Env    *stream.Envelope // read-only for decide
	DryRun bool             // write no state: counts, dynamic entries, caches

	s     *stream.Stream
	hdr   *stream.Header
	spool io.ReaderAt // the whole message: the stream's (stream.File), or a copy
	own   *os.File    // the copy, spooled here
	size  int64

	subject string       // Decision.Subject
	drop    []string     // Decision.Drop
	tmp     string       // where to spool: the stage's $TMPDIR, also when it runs inside mf-bridge
	taker   stream.Taker // stdout, when it takes the envelope written as parsed
}

// Header reads the message's header block once; nil before data.
func (m *Message) Header() (*stream.Header, error) {
	if m.hdr != nil || !m.Env.HasMessage() {
		return m.hdr, nil
	}
	var r *bufio.Reader
	if m.spool != nil {
		r = bufio.NewReader(io.NewSectionReader(m.spool, 0, m.size))
	} else {
		r = m.s.Message
	}
	hdr, err := stream.ReadHeader(r)
	if err != nil {
		return nil, fmt.Errorf("message header: %w", err)
	}
	m.hdr = hdr
	return hdr, nil
}

// Open returns the whole message, header and body as received, from its
// first byte; every call returns a fresh reader. Before data it is empty.
func (m *Message) Open() (io.Reader, error) {
	if err := m.spoolAll(); err != nil {
		return nil, err
	}
	return io.NewSectionReader(m.spool, 0, m.size), nil
}

// Size is the message's size in bytes.
func (m *Message) Size() (int64, error) {
	if err := m.spoolAll(); err != nil {
		return 0, err
	}
	return m.size, nil
}

func (m *Message) spoolAll() error {
	if m.spool != nil {
		return nil
	}
	if f := m.s.Whole; f != nil {
		// Header read or not, the file holds the message from its
		// first byte (stream.ReadHeader keeps every byte it reads).
		m.spool, m.size = f, f.Size()
		return nil
	}
	// Unlinked: the open file is all there is. In memory while small.
	f, err := spool.NewSpill(m.tmp, "mf-stage-*")
	if err != nil {
		return err
	}
	w := writers.Get().(*bufio.Writer)
	w.Reset(f)
	defer func() { w.Reset(nil); writers.Put(w) }()
	var n int64
	if m.hdr != nil {
		k, _ := w.Write(m.hdr.Raw)
		n += int64(k)
	}
	k, err := io.Copy(w, m.s.Message)
	n += k
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	m.own = f.File()
	m.spool, m.size = m.own, n
	return nil
}

// rest is the message after the header block, when that was read, or all
// of it.
func (m *Message) rest() io.Reader {
	if m.spool == nil {
		return m.s.Message
	}
	at := int64(0)
	if m.hdr != nil {
		at = int64(len(m.hdr.Raw))
	}
	return io.NewSectionReader(m.spool, at, m.size-at)
}

func (m *Message) close() {
	if m.own != nil {
		m.own.Close()
	}
}

// Decision is what a decide function says.
type Decision struct {
	Verdict    verdict.Verdict // Continue unless the stage decides
	AddHeaders []string        // "Name: value" fields to put on the message
	Trace      string          // after "NAME ACTION" in Mf-Trace: "list=block client-addr=192.0.2.7"
	Reason     string          // why, for the log; the SMTP reply must not need it
	Subject    string          // a prefix put before the message's Subject (a tag), once
	// Drop names header fields the message came with that go before
	// AddHeaders are put on: a name, any case, or a prefix ending in
	// "*". A stage whose fields others filter on drops the message's own
	// copies, so that a sender cannot pose as the scanner.
	Drop []string
}

// writers are the write buffers of stage runs, kept for the next: inside
// mf-bridge a stage runs several times a message, and a fresh 64 KiB
// buffer each time was most of what it allocated.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// Decide looks at a message and decides.
type Decide func(ctx context.Context, m *Message) (*Decision, error)

// Run runs one stage: it reads stdin as f says, calls decide unless an
// earlier stage decided, writes stdout as f.Output says and returns the
// exit status. An error, from reading or from decide, is the caller's to
// log, and its exit status is 75. name is the command, for Mf-Trace.
func Run(ctx context.Context, name string, f *Flags, stdin io.Reader, stdout io.Writer, getenv func(string) string, decide Decide) (int, error) {
	start := time.Now()
	s, err := stream.Read(stdin, f.InputKind(), f.Envelope(getenv))
	if err != nil {
		return 0, fmt.Errorf("stdin: %w", err)
	}
	defer s.Close()
	m := &Message{Env: &s.Env, DryRun: f.DryRun || f.ReadOnly, s: s, tmp: getenv("TMPDIR")}
	m.taker, _ = stdout.(stream.Taker)
	defer m.close()
	out := writers.Get().(*bufio.Writer)
	out.Reset(stdout)
	defer func() { out.Reset(nil); writers.Put(out) }()
	if s.Final() {
		// Decided upstream: pass it on as it came, and say the same.
		if err := m.emit(out, f.Output, nil); err != nil {
			return 0, err
		}
		return s.Env.Verdict.ExitCode(), out.Flush()
	}
	d, err := decide(ctx, m)
	if err != nil {
		return 0, err
	}
	if d == nil {
		d = &Decision{}
	}
	v := d.Verdict
	word := v.Action.String()
	if f.DryRun && v.Action.Final() {
		word = "would-" + word
		v = verdict.Verdict{Action: verdict.Continue}
	}
	if d.Reason != "" && f.Log != nil {
		f.Log("%s: %s", word, d.Reason)
	}
	trace := name + " " + word
	if d.Trace != "" {
		trace += " " + d.Trace
	}
	s.Env.Trace = append(s.Env.Trace, fmt.Sprintf("%s %.1fms", trace, time.Since(start).Seconds()*1000))
	if v.Action.Final() {
		s.Env.Verdict = &v
	}
	var adds []string
	for _, h := range d.AddHeaders {
		if !slices.Contains(s.Env.AddHeaders, h) && !slices.Contains(adds, h) {
			adds = append(adds, h) // one field is enough, whatever phase asked first
		}
	}
	s.Raw = nil // the envelope changed: written anew
	m.subject = d.Subject
	m.drop = d.Drop
	if err := m.emit(out, f.Output, adds); err != nil {
		return 0, err
	}
	return v.ExitCode(), out.Flush()
}

// emit writes the result. In stream mode: the envelope, then the message,
// with adds put on top of its header if the header was read, or else
// carried as Mf-Add-Header. In message mode no envelope goes out to carry
// the fields earlier phases asked for, so they go into the header too,
// also when the stream was decided upstream and is passed on.
func (m *Message) emit(out io.Writer, mode string, adds []string) error {
	s := m.s
	if mode == "none" {
		_, err := io.Copy(io.Discard, m.rest()) // drain: the writer sees no broken pipe
		return err
	}
	if (m.subject != "" || len(m.drop) > 0) && s.Env.HasMessage() && m.hdr == nil {
		// The Subject is changed, and fields dropped, in the header
		// itself, which the fields to add then go on top of.
		if _, err := m.Header(); err != nil {
			return err
		}
	}
	var top []string
	if s.Env.HasMessage() {
		if mode == "message" {
			top = append(append(top, s.Env.AddHeaders...), adds...)
		} else if m.hdr != nil {
			top = adds
		}
	}
	if len(top) > 0 && m.hdr == nil {
		if _, err := m.Header(); err != nil {
			return err
		}
	}
	if mode == "stream" {
		if m.hdr == nil || !s.Env.HasMessage() {
			s.Env.AddHeaders = append(s.Env.AddHeaders, adds...)
		}
		raw, err := s.Block()
		if err != nil {
			return err
		}
		if m.taker != nil {
			m.taker.TakeEnvelope(s.Env, raw)
		}
		if _, err := out.Write(raw); err != nil {
			return err
		}
		if t, ok := m.taker.(stream.MessageTaker); ok && s.Env.HasMessage() && len(top) == 0 && m.subject == "" && len(m.drop) == 0 {
			// The message goes on as it came (header read or not, it
			// is written back byte for byte): handed back, not copied.
			t.TakeMessage()
			return nil
		}
	}
	if m.hdr != nil {
		h := *m.hdr
		if s.Env.HasMessage() {
			h.Raw = dropFields(h.Raw, m.drop)
		}
		raw := h.Prepend(top)
		if m.subject != "" && s.Env.HasMessage() {
			raw = prefixSubject(raw, m.subject, m.hdr.CRLF)
		}
		if _, err := out.Write(raw); err != nil {
			return err
		}
	}
	_, err := io.Copy(out, m.rest())
	return err
}

// dropFields is the header block raw without the fields drop names (see
// Decision.Drop), folded lines and all.
func dropFields(raw []byte, drop []string) []byte {
	if len(drop) == 0 {
		return raw
	}
	named := func(line []byte) bool {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false
		}
		name = bytes.TrimRight(name, " \t")
		for _, d := range drop {
			if p, ok := strings.CutSuffix(d, "*"); ok {
				if len(name) >= len(p) && bytes.EqualFold(name[:len(p)], []byte(p)) {
					return true
				}
			} else if bytes.EqualFold(name, []byte(d)) {
				return true
			}
		}
		return false
	}
	var out []byte
	skip := false
	for at := 0; at < len(raw); {
		end := bytes.IndexByte(raw[at:], '\n')
		if end < 0 {
			end = len(raw) - at
		} else {
			end++
		}
		line := raw[at : at+end]
		at += end
		switch {
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			// The empty line and what follows it are not fields.
			return append(out, raw[at-end:]...)
		case line[0] == ' ' || line[0] == '\t':
			// A continuation goes with its field.
		default:
			skip = named(line)
		}
		if !skip {
			out = append(out, line...)
		}
	}
	return out
}

// prefixSubject puts p before the value of the first Subject field of the
// header block raw, unless the value starts with it already; a header
// without a Subject gets one.
func prefixSubject(raw []byte, p string, crlf bool) []byte {
	for at := 0; at < len(raw); {
		end := bytes.IndexByte(raw[at:], '\n')
		if end < 0 {
			end = len(raw) - at
		}
		line := raw[at : at+end]
		if len(bytes.TrimRight(line, "\r")) == 0 {
			break
		}
		if len(line) >= 8 && bytes.EqualFold(line[:8], []byte("subject:")) {
			v := at + 8
			if v < len(raw) && raw[v] == ' ' {
				v++
			}
			if bytes.HasPrefix(raw[v:], []byte(p)) {
				return raw
			}
			return slices.Concat(raw[:v], []byte(p), raw[v:])
		}
		at += end + 1
	}
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	return slices.Concat([]byte("Subject: "+strings.TrimRight(p, " ")+nl), raw)
}
