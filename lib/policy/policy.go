// Package policy reads and answers Postfix SMTPD policy delegation
// requests: name=value lines ended by an empty line, one "action=" line
// and an empty line back, many requests over one connection.
package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on one request: Postfix sends a few hundred bytes; anything far
// larger is not Postfix, and is refused rather than buffered.
const (
	MaxLine       = 64 << 10
	MaxAttributes = 256
)

// Request is one policy request: each attribute's last value, and the
// order the names came in.
type Request struct {
	Attrs map[string]string
	Names []string
}

// Get is the value of attribute name ("" when absent).
func (r *Request) Get(name string) string { return r.Attrs[name] }

// ErrFormat is a request that is not one Postfix sends: the server logs
// it and closes the connection, since any answer could be wrong.
var ErrFormat = errors.New("policy request format error")

// Reader reads requests from one connection.
type Reader struct{ br *bufio.Reader }

func NewReader(r io.Reader) *Reader { return &Reader{bufio.NewReaderSize(r, 4096)} }

// Read reads the next request. io.EOF is the client closing between
// requests; a connection that ends inside one is io.ErrUnexpectedEOF.
func (rd *Reader) Read() (*Request, error) {
	req := &Request{Attrs: map[string]string{}}
	for n := 0; ; n++ {
		line, err := rd.line()
		if err != nil {
			if err == io.EOF && n > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == "" {
			if n == 0 {
				// An empty request: nothing Postfix would send.
				return nil, fmt.Errorf("%w: empty request", ErrFormat)
			}
			if req.Attrs["request"] != "smtpd_access_policy" {
				return nil, fmt.Errorf("%w: request=%q, want smtpd_access_policy", ErrFormat, req.Attrs["request"])
			}
			return req, nil
		}
		if n >= MaxAttributes {
			return nil, fmt.Errorf("%w: more than %d attributes", ErrFormat, MaxAttributes)
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: line %q is not name=value", ErrFormat, clip(line))
		}
		if strings.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("%w: NUL in line", ErrFormat)
		}
		if _, dup := req.Attrs[name]; !dup {
			req.Names = append(req.Names, name)
		}
		req.Attrs[name] = value // a repeated name: the last wins
	}
}

func (rd *Reader) line() (string, error) {
	var buf []byte
	for {
		chunk, err := rd.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLine {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrFormat, MaxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimSuffix(string(buf[:len(buf)-1]), "\r"), nil
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Answer is one access(5) action, as the server sends it.
type Answer struct {
	Action string // DUNNO, OK, REJECT, DEFER, HOLD, DISCARD, PREPEND, or a numeric code
	Text   string // the reply text, the hold reason, or the header to prepend
}

// Actions the server gives.
const (
	Dunno   = "DUNNO"
	OK      = "OK"
	Reject  = "REJECT"
	Defer   = "DEFER"
	Hold    = "HOLD"
	Discard = "DISCARD"
	Prepend = "PREPEND"
)

// Line is the answer as it goes on the wire: "action=...", the empty
// line included. Control characters in the text are spaces, so no text
// can end the answer early or add a second one.
func (a Answer) Line() string {
	var b strings.Builder
	b.WriteString("action=")
	b.WriteString(a.Action)
	if a.Text != "" {
		b.WriteByte(' ')
		for _, c := range a.Text {
			if c < 0x20 || c == 0x7f {
				c = ' '
			}
			b.WriteRune(c)
		}
	}
	b.WriteString("\n\n")
	return b.String()
}
