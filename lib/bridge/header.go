package bridge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"mf/lib/edit"
)

// ReadHeader reads a message's header as an MTA does: up to the empty
// line, or up to the first line that cannot be a header line, which then
// starts the body, so a stranger's broken header is taken, not refused.
// first is the start of the body, if it was read.
func ReadHeader(msg *bufio.Reader) (fields []edit.Field, first []byte, err error) {
	head, first, err := splitHeader(msg)
	if err != nil {
		return nil, nil, err
	}
	fields, err = edit.ReadFields(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil, nil, fmt.Errorf("message header: %w", err)
	}
	return fields, first, nil
}

// splitHeader reads the header as an MTA does: up to the empty line, or
// up to the first line that cannot be a header line, which then starts
// the body, so a stranger's broken header is replayed, not refused. head
// ends with an empty line; first is the start of the body, if it was read.
func splitHeader(msg *bufio.Reader) (head, first []byte, err error) {
	for {
		line, err := msg.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, nil, err
		}
		switch {
		case len(line) == 0:
			return append(head, '\n'), nil, nil
		case bytes.Equal(line, []byte("\n")) || bytes.Equal(line, []byte("\r\n")):
			return append(head, line...), nil, nil
		case (line[0] == ' ' || line[0] == '\t') && len(head) > 0, fieldStart(line):
			head = append(head, line...)
			if err == io.EOF {
				return append(head, '\n'), nil, nil
			}
		default:
			return append(head, '\n'), line, nil
		}
	}
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
