package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// exportMagic starts every entry of "journalctl -o export".
const exportMagic = "__CURSOR="

// maxExportField bounds one binary field of an export entry, so a broken
// length cannot make the reader allocate without limit.
const maxExportField = 16 << 20

// exportReader turns the entries of "journalctl -o export" (fields as
// NAME=value lines or, for values with control bytes, NAME, a 64-bit
// little-endian length and the bytes; an empty line after each entry) into
// the JSON lines of "journalctl -o json", which the parsers read. Only
// whole entries come out, so a journal still being written gives the rest
// of its last entry to the next run in cron mode.
type exportReader struct {
	br  *bufio.Reader
	out bytes.Buffer
	err error
}

func newExportReader(r io.Reader) *exportReader {
	return &exportReader{br: bufio.NewReaderSize(r, 256<<10)}
}

func (e *exportReader) Read(p []byte) (int, error) {
	for e.out.Len() == 0 && e.err == nil {
		e.err = e.entry()
	}
	if e.out.Len() > 0 {
		return e.out.Read(p)
	}
	return 0, e.err
}

// wanted are the fields the parsers read.
var wanted = map[string]bool{"__REALTIME_TIMESTAMP": true, "_HOSTNAME": true, "SYSLOG_IDENTIFIER": true, "MESSAGE": true}

// entry reads one entry and writes it out as a JSON line.
func (e *exportReader) entry() error {
	fields := map[string]string{}
	for {
		line, err := e.br.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return io.EOF // an entry cut short: not counted yet
			}
			return err
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			if len(fields) == 0 {
				continue
			}
			b, err := json.Marshal(fields)
			if err != nil {
				return err
			}
			e.out.Write(b)
			e.out.WriteByte('\n')
			return nil
		}
		name, value, ok := bytes.Cut(line, []byte("="))
		if !ok {
			// A binary field: the line is its name.
			var size [8]byte
			if _, err := io.ReadFull(e.br, size[:]); err != nil {
				return eofIsShort(err)
			}
			n := binary.LittleEndian.Uint64(size[:])
			if n > maxExportField {
				return fmt.Errorf("journal export: field %.40q of %d bytes", line, n)
			}
			value = make([]byte, n+1)
			if _, err := io.ReadFull(e.br, value); err != nil {
				return eofIsShort(err)
			}
			if value[n] != '\n' {
				return fmt.Errorf("journal export: field %.40q not ended by a newline", line)
			}
			value = value[:n]
		}
		if wanted[string(name)] {
			fields[string(name)] = string(value)
		}
	}
}

// eofIsShort: the end of the input inside a field is a cut-short entry.
func eofIsShort(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF
	}
	return err
}
