package bridge

import (
	"bufio"
	"fmt"

	"mf/lib/stream"
)

// ReadHeader reads a message's header as an MTA does: up to the empty
// line, or up to the first line that cannot be a header line, which then
// starts the body, so a stranger's broken header is taken, not refused.
// first is the start of the body, if it was read.
func ReadHeader(msg *bufio.Reader) (fields []stream.Field, first []byte, err error) {
	head, first, err := stream.SplitHeader(msg)
	if err != nil {
		return nil, nil, err
	}
	fields, err = stream.ParseFields(head)
	if err != nil {
		return nil, nil, fmt.Errorf("message header: %w", err)
	}
	return fields, first, nil
}
