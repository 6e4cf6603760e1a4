// Package qmail speaks qmail-queue's interface: the envelope on fd 1, the
// exit codes qmail-smtpd turns into replies, the custom error descriptor,
// qmail-smtpd's own Received line, and a quarantine Maildir from which a
// held message can be handed back to the real qmail-queue.
package qmail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit codes of qmail-queue(8), the ones a wrapper uses.
const (
	ExitQueued      = 0  // queued (or, for a wrapper, taken care of)
	ExitAddrTooLong = 11 // "envelope address too long for qq": 554
	ExitPerm        = 31 // permanent refusal of every recipient: 554
	ExitNoMem       = 51
	ExitTimeout     = 52
	ExitWrite       = 53 // write error, disk full
	ExitRead        = 54 // unable to read the message or envelope
	ExitTemp        = 71 // temporary refusal of every recipient: 451
	ExitBug         = 81
	ExitCustom      = 82 // the reply is the text on the custom error descriptor
	ExitFormat      = 91 // envelope format error
)

// Permanent reports whether qmail-smtpd answers code with a 5xx.
func Permanent(code int) bool { return code >= 11 && code <= 40 }

// MaxEnvelope bounds the envelope read from fd 1: qmail-smtpd gives a
// few kilobytes; more than this is not an envelope.
const MaxEnvelope = 16 << 20

// Envelope is what qmail-queue reads on fd 1: the sender ("" for <>)
// and the recipients, in order.
type Envelope struct {
	Sender string
	Rcpts  []string
}

// FormatError is an envelope that is not F...\0 T...\0 ... \0: qmail-queue
// exits 91 on it.
type FormatError struct{ Why string }

func (e *FormatError) Error() string { return "envelope format error: " + e.Why }

// ExitCode is what a wrapper exits with for an error of ReadEnvelope: 91
// for a malformed envelope, 54 for a failed read.
func ExitCode(err error) int {
	var fe *FormatError
	if errors.As(err, &fe) {
		return ExitFormat
	}
	return ExitRead
}

// ReadEnvelope reads the envelope to its closing empty field. Bytes after
// it are ignored, as qmail-queue ignores them.
func ReadEnvelope(r io.Reader) (*Envelope, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxEnvelope+1))
	env := &Envelope{}
	read := 0
	for n := 0; ; n++ {
		f, err := br.ReadSlice(0)
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), f...)
			for err == bufio.ErrBufferFull {
				f, err = br.ReadSlice(0)
				long = append(long, f...)
			}
			f = long
		}
		read += len(f)
		if read > MaxEnvelope {
			return nil, &FormatError{fmt.Sprintf("longer than %d bytes", MaxEnvelope)}
		}
		if err == io.EOF {
			if n == 0 && len(f) == 0 {
				return nil, &FormatError{"empty"}
			}
			return nil, &FormatError{"ends before the closing NUL"}
		}
		if err != nil {
			return nil, fmt.Errorf("read envelope: %w", err)
		}
		f = f[:len(f)-1]
		switch {
		case n == 0:
			if len(f) == 0 || f[0] != 'F' {
				return nil, &FormatError{"does not start with F"}
			}
			env.Sender = string(f[1:])
		case len(f) == 0:
			return env, nil
		case f[0] != 'T':
			return nil, &FormatError{fmt.Sprintf("field %d starts with %q, not T", n+1, f[0])}
		default:
			env.Rcpts = append(env.Rcpts, string(f[1:]))
		}
	}
}

// Bytes is the envelope as qmail-queue reads it.
func (e *Envelope) Bytes() []byte {
	var b bytes.Buffer
	b.WriteByte('F')
	b.WriteString(e.Sender)
	b.WriteByte(0)
	for _, r := range e.Rcpts {
		b.WriteByte('T')
		b.WriteString(r)
		b.WriteByte(0)
	}
	b.WriteByte(0)
	return b.Bytes()
}

// Valid reports why an address cannot be written into an envelope: a NUL
// would end the field early.
func Valid(addr string) error {
	if strings.IndexByte(addr, 0) >= 0 {
		return errors.New("address holds a NUL byte")
	}
	return nil
}

// Reply is what qmail-smtpd (notqmail 1.09, measured) tells the client
// when its qmail-queue exits with code; custom is what was written on
// the custom error descriptor.
func Reply(code int, custom string) string {
	switch {
	case code == ExitQueued:
		return "250 ok"
	case code == ExitCustom && len(custom) > 2 && custom[0] == 'D':
		return "554 " + custom[1:]
	case code == ExitCustom && len(custom) > 2:
		return "451 " + custom[1:]
	case code == ExitAddrTooLong:
		return "554 envelope address too long for qq (#5.1.3)"
	case code == ExitPerm:
		return "554 mail server permanently rejected message (#5.3.0)"
	case code == ExitTemp:
		return "451 mail server temporarily rejected message (#4.3.0)"
	case Permanent(code):
		return "554 qq permanent problem (#5.3.0)"
	}
	return "451 qq temporary problem (#4.3.0)"
}
