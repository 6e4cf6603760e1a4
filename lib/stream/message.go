package stream

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-message/textproto"
)

// MaxHeader bounds how much of a message's header a stage reads to look at
// it. Past that the stage looks no further; the bytes still pass through.
const MaxHeader = 1 << 20

// Header is the header block of a message, read without consuming it from
// the stream's point of view: Raw holds the exact bytes, which the caller
// writes on before copying the rest of the message.
type Header struct {
	Raw    []byte
	Fields textproto.Header // parsed from Raw; empty if Raw did not parse
	CRLF   bool             // the message's first line ends in CRLF
}

// ReadHeader reads the header block of the message from br (up to and
// including the empty line, or at most MaxHeader bytes).
func ReadHeader(br *bufio.Reader) (*Header, error) {
	var raw []byte
	lineStart := 0
	for len(raw) < MaxHeader {
		chunk, err := br.ReadSlice('\n')
		raw = append(raw, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if line := string(raw[lineStart:]); line == "\n" || line == "\r\n" {
			break
		}
		lineStart = len(raw)
	}
	h := &Header{Raw: raw}
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		h.CRLF = true
	}
	// A header that does not parse (a stranger's mail) leaves Fields with
	// what parsed before the bad line; the bytes pass on regardless.
	fields, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	h.Fields = fields
	return h, nil
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
