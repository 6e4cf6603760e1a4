package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"

	"mf/lib/maillog"
	"mf/lib/summary"
)

// batch is what one worker made of one chunk of lines.
type batch struct {
	events   []maillog.Event
	hashes   []uint64
	keys     []uint64 // of each event: summary.Key, made here beside the parsing
	repeated []bool   // of each event: a copy of a line read before (told by scan)
	unparsed [][]byte
	panics   []parsePanic
	lines    summary.Lines
}

// parsePanic is a line that made the parser panic: a bug, reported with
// where the line is, and the line counted as unparsed.
type parsePanic struct {
	line int64 // within the chunk, from 1
	err  string
}

const (
	chunkSize = 128 << 10
	// maxLine is the longest line read: past it a line is no log line,
	// and what follows up to its newline is skipped, counted as one
	// unparsed line.
	maxLine = 16 << 20
)

// Free lists of chunk buffers and batches: a long log goes through a few
// of each instead of allocating and clearing a megabyte per chunk. Unlike
// a sync.Pool they are not emptied by every collection, which made the
// buffers and batches of a run again after each one.
var (
	bufs = freeList[[]byte]{
		c:    make(chan []byte, 8),
		new:  func() []byte { return make([]byte, 0, chunkSize+64<<10) },
		keep: func(b []byte) bool { return cap(b) >= chunkSize && cap(b) <= chunkSize+64<<10 }, // not the carry of an overlong line
	}
	batches = freeList[*batch]{
		c:    make(chan *batch, 8),
		new:  func() *batch { return &batch{events: make([]maillog.Event, 0, 1024)} },
		keep: func(b *batch) bool { return cap(b.events) <= 4096 }, // not one that a chunk of tiny lines grew
	}
)

// freeList keeps up to cap(c) things for reuse, those that keep allows.
type freeList[T any] struct {
	c    chan T
	new  func() T
	keep func(T) bool
}

func (f *freeList[T]) Get() T {
	select {
	case x := <-f.c:
		return x
	default:
		return f.new()
	}
}

func (f *freeList[T]) Put(x T) {
	if !f.keep(x) {
		return
	}
	select {
	case f.c <- x:
	default:
	}
}

// chunk is whole lines of one input, and where the batch made of them
// will be handed over; long counts overlong lines skipped before them.
type chunk struct {
	in   *input
	data []byte
	long []byte // the start of an overlong line skipped (nil: none)
	res  chan *batch
}

// scan feeds the inputs through workers that parse in parallel, tells
// the repeated events of their batches in input order by seen (nil:
// none is), and hands the batches to add in input order, with the input
// and the number of lines of it read before the batch.
func scan(ins []*input, newParser func() *maillog.Parser, wantUnparsed bool, seen *summary.Seen, add func(*batch, *chunk, int64)) error {
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
			if err := split(in, func(data, long []byte) {
				c := &chunk{in: in, data: data, long: long, res: make(chan *batch, 1)}
				work <- c
				order <- c
			}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	// Repeated lines are told in a stage of their own, between the
	// workers and add: its look-ups in megabytes of hashes, the same in
	// the same order, take another core than the adding.
	ready := make(chan *chunk, 2)
	go func() {
		defer close(ready)
		for c := range order {
			b := <-c.res
			b.repeated = b.repeated[:0]
			for _, h := range b.hashes {
				b.repeated = append(b.repeated, seen.Repeated(h))
			}
			c.res <- b
			ready <- c
		}
	}()
	lines := map[*input]int64{}
	for c := range ready {
		b := <-c.res
		if c.long != nil {
			lines[c.in]++
		}
		add(b, c, lines[c.in])
		lines[c.in] += b.lines.Read
		// add keeps copies of what it needs: buffers go round again.
		bufs.Put(c.data[:0])
		batches.Put(b)
	}
	return <-errc
}

// split reads one input into chunks ending at a newline.
func split(in *input, emit func(data, long []byte)) error {
	r, err := in.text()
	if err != nil {
		return err
	}
	pos := in.offset
	var carry, long []byte
	skipping := false
	for {
		buf := bufs.Get()
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
		if skipping {
			// Inside an overlong line: drop up to its newline.
			i := bytes.IndexByte(buf, '\n')
			if i < 0 && !eof {
				pos += int64(len(buf))
				carry = carry[:0]
				bufs.Put(buf[:0])
				continue
			}
			if i < 0 {
				i = len(buf) - 1
			}
			pos += int64(i + 1)
			buf = append(buf[:0], buf[i+1:]...)
			skipping = false
			if len(buf) == 0 && eof {
				emit(buf, long)
				in.end = pos
				return nil
			}
		}
		cut := bytes.LastIndexByte(buf, '\n') + 1
		if eof && in.whole {
			cut = len(buf)
		}
		if cut == 0 && !eof && len(buf) >= maxLine {
			long = bytes.Clone(buf[:min(len(buf), 200)])
			skipping = true
			pos += int64(len(buf))
			carry = carry[:0]
			bufs.Put(buf[:0])
			continue
		}
		if cut > 0 || long != nil {
			data := buf[:cut]
			if cut == 0 {
				data = nil // buf goes back below: not to be put back twice
			}
			emit(data, long)
			long = nil
			pos += int64(cut)
		}
		carry = append(carry[:0], buf[cut:]...)
		if cut == 0 {
			bufs.Put(buf[:0])
		}
		if eof {
			in.end = pos
			return nil
		}
	}
}

// safeParse is Parse, but a line that makes the parser panic is an
// unparsed line, not the end of the run.
func safeParse(p *maillog.Parser, line []byte, ev *maillog.Event) (r maillog.Result, err error) {
	defer func() {
		if e := recover(); e != nil {
			r, err = maillog.Unparsed, fmt.Errorf("%v", e)
		}
	}()
	return parseLine(p, line, ev), nil
}

// parseLine is Parse; tests put a parser that panics in its place.
var parseLine = (*maillog.Parser).Parse

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
	b := batches.Get()
	b.events, b.hashes, b.keys, b.unparsed, b.panics, b.lines = b.events[:0], b.hashes[:0], b.keys[:0], b.unparsed[:0], b.panics[:0], summary.Lines{}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		b.lines.Read++
		// The line is parsed into the batch's next event, which only an
		// event keeps: an event of some 300 bytes is not copied there.
		n := len(b.events)
		if n == cap(b.events) {
			b.events = append(b.events, maillog.Event{})[:n]
		}
		r, err := safeParse(p, line, &b.events[:n+1][n])
		if err != nil {
			b.panics = append(b.panics, parsePanic{b.lines.Read, err.Error()})
		}
		switch r {
		case maillog.HasEvent:
			b.events = b.events[:n+1]
			b.hashes = append(b.hashes, summary.Hash(line))
			b.keys = append(b.keys, summary.Key(&b.events[n]))
		case maillog.Known:
			b.lines.Known++
		case maillog.Unrecognized:
			b.lines.Unrecognized++
			if wantUnparsed {
				b.unparsed = append(b.unparsed, line)
			}
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
