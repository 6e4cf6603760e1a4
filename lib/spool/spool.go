// Package spool keeps a message while it is filtered, in memory while it
// is small and on disk once it is not: written once with LF line ends,
// read from its first byte as often as a stage needs, and gone when
// closed, since the file is unlinked as soon as it exists.
package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Message is a spooled message from Offset to its end: in File, or,
// when File is nil, in the process's memory (a small Buffer's).
type Message struct {
	File   *os.File
	Offset int64
	mem    []byte
	done   func() // called by Close, after which mem is not read
}

// From is the same message from offset on, of what holds it: a view,
// valid while m is, and not closed itself.
func (m *Message) From(offset int64) *Message {
	return &Message{File: m.File, Offset: offset, mem: m.mem}
}

// Reader reads the message from its first byte, however often it is
// called; it reads at any offset too (stream.File).
func (m *Message) Reader() (*io.SectionReader, error) {
	n, err := m.Size()
	if err != nil {
		return nil, err
	}
	if m.File == nil {
		return io.NewSectionReader(bytes.NewReader(m.mem), m.Offset, n), nil
	}
	return io.NewSectionReader(m.File, m.Offset, n), nil
}

// Size is the message's length in bytes.
func (m *Message) Size() (int64, error) {
	if m.File == nil {
		return max(int64(len(m.mem))-m.Offset, 0), nil
	}
	st, err := m.File.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size() - m.Offset, nil
}

// Close lets go of the file or the memory that holds the message.
func (m *Message) Close() error {
	if m.File != nil {
		return m.File.Close()
	}
	if m.done != nil {
		m.done()
		m.done = nil
	}
	m.mem = nil
	return nil
}

// Create makes an unlinked file in dir ("" is $TMPDIR): the open file is
// all there is, so nothing is left behind whatever happens to the process.
func Create(dir, pattern string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	// O_TMPFILE makes the file without a name: one step instead of a
	// create and an unlink, for each message and each stage's output.
	if fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600); err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, pattern)), nil
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

// Writer stores what it is given with each CRLF written as LF, also when
// a CR and its LF come in two writes, and counts the bytes it was given.
type Writer struct {
	b  *Buffer
	w  *bufio.Writer
	cr bool  // the last write ended in CR
	n  int64 // bytes given, as given
}

// NewWriter spools a message: in memory while it is small, in an
// unlinked file (in dir once it is large) when it is not (see Buffer).
func NewWriter(dir string) *Writer {
	b := NewBuffer(dir, "mf-msg-*")
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(b)
	return &Writer{b: b, w: bw}
}

// writers are the buffers of Writers that finished or closed, kept for
// the next message: a fresh 64 KiB buffer for each was a fifth of what
// the bridge allocated per message, and so of its garbage collection.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// release gives the buffer back; the Writer takes no more.
func (w *Writer) release() {
	if w.w != nil {
		w.w.Reset(nil)
		writers.Put(w.w)
		w.w = nil
	}
}

var errFinished = errors.New("spool: write after the message was finished")

// Write stores p, CRLF as LF.
func (w *Writer) Write(p []byte) (int, error) {
	if w.w == nil {
		return 0, errFinished
	}
	n := len(p)
	w.n += int64(n)
	if w.cr {
		if len(p) == 0 || p[0] != '\n' {
			w.w.WriteByte('\r')
		}
		w.cr = false
	}
	if k := len(p); k > 0 && p[k-1] == '\r' {
		p, w.cr = p[:k-1], true
	}
	for len(p) > 0 {
		i := bytes.Index(p, []byte("\r\n"))
		if i < 0 {
			w.w.Write(p)
			break
		}
		w.w.Write(p[:i])
		w.w.WriteByte('\n')
		p = p[i+2:]
	}
	return n, nil
}

// Stored is how many bytes are in the file so far, after conversion.
func (w *Writer) Stored() int64 {
	if w.w == nil {
		return w.b.Len()
	}
	return w.b.Len() + int64(w.w.Buffered())
}

// Given is how many bytes Write was given, line ends as they came.
func (w *Writer) Given() int64 { return w.n }

// Finish writes what is buffered and returns the message, from its first
// byte. The Writer is done with; closing the message lets go of it.
func (w *Writer) Finish() (*Message, error) {
	if w.w == nil {
		return nil, errFinished
	}
	if w.cr {
		w.w.WriteByte('\r')
		w.cr = false
	}
	err := w.w.Flush()
	w.release()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return w.b.Message(0), nil
}

// Close lets go of the message without finishing.
func (w *Writer) Close() error {
	w.release()
	return w.b.Close()
}

// lf reads with each CRLF read as LF.
type lf struct {
	br *bufio.Reader
}

// LF reads r with each CRLF read as LF.
func LF(r io.Reader) io.Reader {
	if br, ok := r.(*bufio.Reader); ok {
		return &lf{br}
	}
	return &lf{bufio.NewReaderSize(r, 64<<10)}
}

func (l *lf) Read(p []byte) (int, error) {
	for {
		n, err := l.br.Read(p)
		w := 0
		for i := 0; i < n; i++ {
			if p[i] == '\r' {
				if i+1 < n && p[i+1] == '\n' {
					continue
				}
				if i+1 == n {
					if next, e := l.br.Peek(1); e == nil && next[0] == '\n' {
						continue
					}
				}
			}
			p[w] = p[i]
			w++
		}
		if w > 0 || n == 0 || err != nil {
			return w, err
		}
	}
}

// Same reports whether two readers give the same bytes, a block at a time.
func Same(a, b io.Reader) (bool, error) {
	// The blocks are Copy's: two fresh ones for each message compared
	// were the bridge's largest allocation.
	pa, pb := buffers.Get().(*[]byte), buffers.Get().(*[]byte)
	defer buffers.Put(pa)
	defer buffers.Put(pb)
	ba, bb := *pa, *pb
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !aEnd:
			return false, ea
		case eb != nil && !bEnd:
			return false, eb
		case aEnd || bEnd:
			return aEnd && bEnd, nil
		}
	}
}

// Counter counts the bytes read through it.
type Counter struct {
	R io.Reader
	N int64
}

func (c *Counter) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}
