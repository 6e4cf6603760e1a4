package main

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"github.com/klauspost/compress/gzip"
	"io"
	"os"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"mf/lib/maillog"
)

// input is one log to read: a file or stdin, from offset on (bytes of
// the decompressed text). It is opened once: its first line, which
// orders the logs and fingerprints them in cron mode, is peeked from the
// reader the scan then goes on with.
type input struct {
	name   string
	path   string // "" for stdin
	offset int64
	first  time.Time // time of its first line, for ordering
	whole  bool      // count a last line that lacks its newline
	head   string    // cron mode: fingerprint of the first line
	end    int64     // set after reading: offset just past the last line counted

	f         *os.File      // nil for stdin
	plain     bool          // neither compressed nor a journal export: offsets are file positions
	r         *bufio.Reader // the text from its start
	firstLine []byte        // up to the first newline (or 64 KiB)
	closeZ    func()
}

// bufSize is a chunk: a bufio.Reader hands a read of its size or more
// straight to what it reads, so split fills its chunks from the file or
// the decompressor with no copy in between.
const bufSize = chunkSize

// openInput opens a log (path "" is stdin), sees what it is by its magic
// bytes, and reads its first line and the time of the first line that has
// one.
func openInput(name, path string, stdin io.Reader, p *maillog.Parser) (*input, error) {
	in := &input{name: name, path: path, closeZ: func() {}}
	var raw io.Reader = stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		in.f, raw = f, f
	}
	br := bufio.NewReaderSize(raw, bufSize)
	magic, _ := br.Peek(len(exportMagic))
	in.plain = in.f != nil && !compressed(magic) && string(magic) != exportMagic
	r, closeZ, err := decompress(br)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	in.r, in.closeZ = r, closeZ
	buf, err := in.r.Peek(64 << 10)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		in.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		in.firstLine = buf[:i+1]
	} else if len(buf) == 64<<10 {
		in.firstLine = buf // a first line this long will not change either
	}
	in.firstLine = bytes.Clone(in.firstLine)
	for len(buf) > 0 {
		line := upto(buf, '\n')
		if t, ok := p.Time(line); ok {
			in.first = t
			break
		}
		buf = buf[min(len(line)+1, len(buf)):]
	}
	return in, nil
}

// text returns the input's text from its offset on: by seeking in a
// plain file, by reading through a compressed one.
func (in *input) text() (io.Reader, error) {
	if in.offset == 0 {
		return in.r, nil
	}
	if in.plain {
		if _, err := in.f.Seek(in.offset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("%s: %w", in.name, err)
		}
		return bufio.NewReaderSize(in.f, bufSize), nil
	}
	if _, err := io.CopyN(io.Discard, in.r, in.offset); err != nil {
		return nil, fmt.Errorf("%s: skipping to %d: %w", in.name, in.offset, err)
	}
	return in.r, nil
}

func (in *input) close() {
	if in.closeZ != nil {
		in.closeZ()
	}
	if in.f != nil {
		in.f.Close()
	}
}

// decompress wraps r after looking at its first bytes: gzip, bzip2, xz
// and zstd by their magic numbers, anything else as plain text; then
// "journalctl -o export" entries, inside or not, become JSON lines.
func decompress(br *bufio.Reader) (*bufio.Reader, func(), error) {
	u, done, err := unpack(br)
	if err != nil {
		return nil, done, err
	}
	out, ok := u.(*bufio.Reader)
	if !ok {
		out = bufio.NewReaderSize(u, bufSize)
	}
	if magic, _ := out.Peek(len(exportMagic)); string(magic) == exportMagic {
		return bufio.NewReaderSize(newExportReader(out), bufSize), done, nil
	}
	return out, done, nil
}

// unpack decompresses br by its magic number, or passes it as it is.
func unpack(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(6)
	nop := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nop, err
		}
		return z, nop, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nop, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, nop, err
		}
		return z, nop, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nop, err
		}
		return z, z.Close, nil
	}
	return br, nop, nil
}

func compressed(magic []byte) bool {
	return bytes.HasPrefix(magic, []byte{0x1f, 0x8b}) || bytes.HasPrefix(magic, []byte("BZh")) ||
		bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X'}) || bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd})
}

func upto(b []byte, c byte) []byte {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return b[:i]
	}
	return b
}

// orderInputs puts files in the order of their first timestamps, so
// that rotated sets given in any order are read as they were written.
func orderInputs(ins []*input) {
	sort.SliceStable(ins, func(i, j int) bool {
		a, b := ins[i].first, ins[j].first
		if a.IsZero() || b.IsZero() {
			return !a.IsZero() && b.IsZero()
		}
		return a.Before(b)
	})
}
