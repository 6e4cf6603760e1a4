package stream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// MaxHeader bounds how much of a message's header is read to look at it.
// Past that nothing more is looked at; the bytes still pass through.
const MaxHeader = 1 << 20

// Field is a header field as an MTA shows it to a milter: the name as
// written and the value without the space after the colon, folded lines
// joined by LF.
type Field struct{ Name, Value string }

func (f Field) String() string { return f.Name + ": " + f.Value }

// Header is the header block of a message, read without consuming it from
// the stream's point of view: Raw holds the exact bytes, which the caller
// writes on before copying the rest of the message.
type Header struct {
	Raw    []byte
	Fields textproto.Header // parsed from Raw; empty if Raw did not parse
	CRLF   bool             // the message's first line ends in CRLF
}

// How a block of lines ended.
const (
	endBlank = iota // at the empty line, which is in the block
	endEOF          // at the end of the input
	endMax          // at the size limit
	endLine         // at a line that cannot be in it
)

// readBlock is the one reader of header-like blocks, the envelope's and a
// message's: lines up to and including the first empty one, at most about
// max bytes. With accept, a line it refuses ends the block and is
// returned as first, read but not part of it.
func readBlock(br *bufio.Reader, max int, accept func(line []byte, later bool) bool) (raw, first []byte, end int, err error) {
	for {
		start := len(raw)
		eof := false
		for {
			chunk, e := br.ReadSlice('\n')
			raw = append(raw, chunk...)
			if e == bufio.ErrBufferFull {
				if len(raw) > max {
					return raw, nil, endMax, nil
				}
				continue
			}
			if e == io.EOF {
				eof = true
			} else if e != nil {
				return nil, nil, 0, e
			}
			break
		}
		line := raw[start:]
		switch {
		case len(line) == 0:
			return raw, nil, endEOF, nil
		case string(line) == "\n" || string(line) == "\r\n":
			return raw, nil, endBlank, nil
		case accept != nil && !accept(line, start > 0):
			return raw[:start:start], append([]byte(nil), line...), endLine, nil
		case eof:
			return raw, nil, endEOF, nil
		case len(raw) >= max:
			return raw, nil, endMax, nil
		}
	}
}

// ReadHeader reads the header block of the message from br (up to and
// including the empty line, or at most MaxHeader bytes).
func ReadHeader(br *bufio.Reader) (*Header, error) {
	raw, _, _, err := readBlock(br, MaxHeader, nil)
	if err != nil {
		return nil, err
	}
	h := &Header{Raw: raw}
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		h.CRLF = true
	}
	// A header that does not parse (a stranger's mail) leaves Fields with
	// what parsed before the bad line; the bytes pass on regardless.
	fields, _ := textproto.ReadHeader(memReader(raw))
	h.Fields = fields
	return h, nil
}

// memReader reads b through a buffer no larger than b: it is in memory
// already, and a message is read this way several times.
func memReader(b []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), len(b))
}

// SplitHeader reads a message's header as an MTA does: up to the empty
// line, or up to the first line that cannot be a header line, which then
// starts the body, so a stranger's broken header is taken, not refused.
// head ends with an empty line (added when the message had none); first is
// the start of the body, if it was read.
func SplitHeader(br *bufio.Reader) (head, first []byte, err error) {
	head, first, end, err := readBlock(br, MaxHeader, func(line []byte, later bool) bool {
		return later && (line[0] == ' ' || line[0] == '\t') || fieldStart(line)
	})
	if err != nil {
		return nil, nil, err
	}
	if end != endBlank {
		head = append(head, '\n')
	}
	return head, first, nil
}

// fieldStart reports whether line begins a header field: a name of
// printable characters, then a colon.
func fieldStart(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	name = bytes.TrimRight(name, " \t")
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// ParseFields is ReadFields of a header block already in memory.
func ParseFields(raw []byte) ([]Field, error) { return ReadFields(memReader(raw)) }

// ReadFields reads a header block, up to and including the empty line
// that ends it, as fields.
func ReadFields(br *bufio.Reader) ([]Field, error) {
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	var out []Field
	for fs := h.Fields(); fs.Next(); {
		raw, err := fs.Raw()
		if err != nil {
			return nil, err
		}
		name, value, ok := bytes.Cut(raw, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("header field without a colon: %q", raw)
		}
		value = bytes.TrimSuffix(value, []byte("\r\n"))
		value = bytes.TrimPrefix(value, []byte(" "))
		out = append(out, Field{
			Name:  string(bytes.TrimRight(name, " \t")),
			Value: strings.ReplaceAll(string(value), "\r\n", "\n"),
		})
	}
	return out, nil
}

// Prepend returns the header with fields ("Name: value") put on top, in
// the message's own line ending, leaving every original byte as it was.
func (h *Header) Prepend(fields []string) []byte {
	if len(fields) == 0 {
		return h.Raw
	}
	nl := "\n"
	if h.CRLF {
		nl = "\r\n"
	}
	var b bytes.Buffer
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString(nl)
	}
	if len(h.Raw) == 0 {
		// An empty message gets a header and the empty line ending it.
		b.WriteString(nl)
	}
	b.Write(h.Raw)
	return b.Bytes()
}
