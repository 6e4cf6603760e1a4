package spool

import (
	"bytes"
	"sync"
)

// Small is how many bytes a Buffer holds in the process's own memory
// before it becomes a Spill: an envelope block, or most mail.
const Small = 64 << 10

// Buffer is what is written to it, held in a buffer of the process's
// memory while it is no more than Small bytes and in a Spill (see
// NewSpill) from the first byte past that. A message that stays small
// costs no file at all: a memory file's making, its writes, reads and
// close were a tenth of what a chain of mf's own stages cost the bridge
// for each message.
type Buffer struct {
	dir, pattern string
	mem          *bytes.Buffer
	spill        *Spill
	err          error
}

// smallBuffers are Buffers' memory, kept between messages.
var smallBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// NewBuffer makes an empty Buffer; dir and pattern are the Spill's, should
// it need one.
func NewBuffer(dir, pattern string) *Buffer {
	return &Buffer{dir: dir, pattern: pattern, mem: smallBuffers.Get().(*bytes.Buffer)}
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.spill == nil {
		if b.mem.Len()+len(p) <= Small {
			return b.mem.Write(p)
		}
		if err := b.toSpill(); err != nil {
			b.err = err
			return 0, err
		}
	}
	return b.spill.Write(p)
}

// toSpill moves what is in memory to a Spill, and goes on there.
func (b *Buffer) toSpill() error {
	s, err := NewSpill(b.dir, b.pattern)
	if err != nil {
		return err
	}
	if _, err := s.Write(b.mem.Bytes()); err != nil {
		s.Close()
		return err
	}
	b.spill = s
	b.release()
	return nil
}

// ReadAt reads what was written, at off.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if b.spill != nil {
		return b.spill.File().ReadAt(p, off)
	}
	return bytes.NewReader(b.mem.Bytes()).ReadAt(p, off)
}

// Len is how many bytes were written.
func (b *Buffer) Len() int64 {
	if b.spill != nil {
		return b.spill.Len()
	}
	return int64(b.mem.Len())
}

// Message is what was written from offset on, where it is. Write no more
// to the Buffer, nor close it: closing the message lets go of it, the
// memory going back for the next Buffer.
func (b *Buffer) Message(offset int64) *Message {
	if b.spill != nil {
		return &Message{File: b.spill.File(), Offset: offset}
	}
	return &Message{Offset: offset, mem: b.mem.Bytes(), done: b.release}
}

// release gives the memory back; nothing read from it points into it.
func (b *Buffer) release() {
	if b.mem != nil && b.mem.Cap() <= 2*Small {
		b.mem.Reset()
		smallBuffers.Put(b.mem)
	}
	b.mem = nil
}

// Close lets go of what was written.
func (b *Buffer) Close() error {
	b.release()
	if b.spill != nil {
		return b.spill.Close()
	}
	return nil
}
