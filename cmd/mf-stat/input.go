package main

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"mf/lib/maillog"
	"mf/lib/summary"
)

// input is one log to read: a file or stdin, from offset on (bytes of
// the decompressed text).
type input struct {
	name   string
	path   string // "" for stdin
	offset int64
	first  time.Time // time of its first line, for ordering
	whole  bool      // count a last line that lacks its newline
	head   string    // cron mode: fingerprint of the first line
	end    int64     // set after reading: offset just past the last line counted
}

// decompress wraps r after looking at its first bytes: gzip, bzip2, xz
// and zstd by their magic numbers, anything else as plain text; then
// "journalctl -o export" entries, inside or not, become JSON lines.
func decompress(r io.Reader) (io.Reader, func(), error) {
	u, done, err := unpack(r)
	if err != nil {
		return nil, done, err
	}
	br, ok := u.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(u, 256<<10)
	}
	if magic, _ := br.Peek(len(exportMagic)); string(magic) == exportMagic {
		return newExportReader(br), done, nil
	}
	return br, done, nil
}

// unpack decompresses r by its magic number, or passes it as it is.
func unpack(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
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

// open opens a log and skips to offset: by seeking in a plain file, by
// reading through a compressed one.
func open(in *input, stdin io.Reader) (io.Reader, func(), error) {
	var f io.Reader = stdin
	closeFile := func() {}
	if in.path != "" {
		fh, err := os.Open(in.path)
		if err != nil {
			return nil, nil, err
		}
		f, closeFile = fh, func() { fh.Close() }
		var magic [4]byte
		n, _ := io.ReadFull(fh, magic[:])
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			closeFile()
			return nil, nil, err
		}
		if in.offset > 0 && !compressed(magic[:n]) && !bytes.HasPrefix([]byte(exportMagic), magic[:n]) {
			if _, err := fh.Seek(in.offset, io.SeekStart); err != nil {
				closeFile()
				return nil, nil, err
			}
			return bufio.NewReaderSize(fh, 256<<10), closeFile, nil
		}
	}
	r, closeZ, err := decompress(f)
	if err != nil {
		closeFile()
		return nil, nil, fmt.Errorf("%s: %w", in.name, err)
	}
	done := func() { closeZ(); closeFile() }
	if in.offset > 0 {
		if _, err := io.CopyN(io.Discard, r, in.offset); err != nil {
			done()
			return nil, nil, fmt.Errorf("%s: skipping to %d: %w", in.name, in.offset, err)
		}
	}
	return r, done, nil
}

func compressed(magic []byte) bool {
	return bytes.HasPrefix(magic, []byte{0x1f, 0x8b}) || bytes.HasPrefix(magic, []byte("BZh")) ||
		bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X'}) || bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// head reads the first line of a log (decompressed), and the time of the
// first line that has one.
func head(in *input, p *maillog.Parser) (first []byte, t time.Time, err error) {
	r, done, err := open(&input{name: in.name, path: in.path}, nil)
	if err != nil {
		return nil, t, err
	}
	defer done()
	buf := make([]byte, 64<<10)
	n, err := fill(r, buf)
	if err != nil && err != io.EOF {
		return nil, t, fmt.Errorf("%s: %w", in.name, err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		first = buf[:i+1]
	} else if n == len(buf) {
		first = buf // a first line this long will not change either
	}
	for len(buf) > 0 {
		line := upto(buf, '\n')
		if tt, ok := p.Time(line); ok {
			return first, tt, nil
		}
		buf = buf[min(len(line)+1, len(buf)):]
	}
	return first, t, nil
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

// batch is what one worker made of one chunk of lines.
type batch struct {
	events   []maillog.Event
	hashes   []uint64
	unparsed [][]byte
	lines    summary.Lines
}

const chunkSize = 1 << 20

// Pools of chunk buffers and batches: a long log goes through a few of
// each instead of allocating and clearing a megabyte per chunk.
var (
	bufs    = sync.Pool{New: func() any { return make([]byte, 0, chunkSize+64<<10) }}
	batches = sync.Pool{New: func() any { return &batch{events: make([]maillog.Event, 0, 4096)} }}
)

// chunk is whole lines of one input, and where the batch made of them
// will be handed over.
type chunk struct {
	data []byte
	res  chan *batch
}

// scan feeds the inputs through workers that parse in parallel, and
// hands their batches to add in input order.
func scan(ins []*input, stdin io.Reader, newParser func() *maillog.Parser, wantUnparsed bool, add func(*batch)) error {
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *chunk, workers*2)
	order := make(chan *chunk, workers*2)
	for range workers {
		go func() {
			p := newParser()
			for c := range work {
				c.res <- parse(p, c.data, wantUnparsed)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		for _, in := range ins {
			if err := split(in, stdin, func(data []byte) {
				c := &chunk{data: data, res: make(chan *batch, 1)}
				work <- c
				order <- c
			}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for c := range order {
		b := <-c.res
		add(b)
		// add keeps copies of what it needs: buffers go round again.
		bufs.Put(c.data[:0])
		batches.Put(b)
	}
	return <-errc
}

// split reads one input into chunks ending at a newline.
func split(in *input, stdin io.Reader, emit func([]byte)) error {
	r, done, err := open(in, stdin)
	if err != nil {
		return err
	}
	defer done()
	pos := in.offset
	var carry []byte
	for {
		buf := bufs.Get().([]byte)
		if cap(buf) < len(carry)+chunkSize {
			buf = make([]byte, 0, len(carry)+chunkSize)
		}
		buf = append(buf[:0], carry...)
		n, err := fill(r, buf[len(carry):len(carry)+chunkSize])
		buf = buf[:len(carry)+n]
		eof := err == io.EOF
		if err != nil && !eof {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		cut := bytes.LastIndexByte(buf, '\n') + 1
		if eof && in.whole {
			cut = len(buf)
		}
		if cut == 0 && !eof && len(buf) >= 16<<20 {
			cut = len(buf) // a 16 MB line is not a log line: let it go as unparsed
		}
		if cut > 0 {
			emit(buf[:cut])
			pos += int64(cut)
		}
		carry = append([]byte(nil), buf[cut:]...)
		if cut == 0 {
			bufs.Put(buf[:0])
		}
		if eof {
			in.end = pos
			return nil
		}
	}
}

// safeParse is Parse, but a line that makes the parser panic (a bug, which
// the fuzz targets hunt for) is an unparsed line, not the end of the run.
func safeParse(p *maillog.Parser, line []byte, ev *maillog.Event) (r maillog.Result) {
	defer func() {
		if recover() != nil {
			r = maillog.Unparsed
		}
	}()
	return p.Parse(line, ev)
}

// fill reads until buf is full or the input ends (io.EOF). Unlike
// io.ReadFull it keeps a decompressor's io.ErrUnexpectedEOF, which means
// a truncated file, apart from a clean end.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// parse parses the lines of a chunk.
func parse(p *maillog.Parser, data []byte, wantUnparsed bool) *batch {
	b := batches.Get().(*batch)
	b.events, b.hashes, b.unparsed, b.lines = b.events[:0], b.hashes[:0], b.unparsed[:0], summary.Lines{}
	var ev maillog.Event
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		b.lines.Read++
		switch safeParse(p, line, &ev) {
		case maillog.HasEvent:
			b.events = append(b.events, ev)
			b.hashes = append(b.hashes, summary.Hash(line))
		case maillog.Known:
			b.lines.Known++
		case maillog.Foreign:
			b.lines.Foreign++
		default:
			b.lines.Unparsed++
			if wantUnparsed {
				b.unparsed = append(b.unparsed, line)
			}
		}
	}
	return b
}
