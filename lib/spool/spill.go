package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// InMemory is how many bytes a spool file holds in memory before it moves
// to disk. Most mail is smaller: it is filtered without a file created,
// written and freed on disk for each message and each stage's output,
// which is what a filter's time went to beside the MTA (on ext4, about
// 0.1 to 0.5 ms a file against 0.01 ms for a memory file). Larger mail
// goes to the spool directory, so memory stays bounded by this much per
// file in flight.
const InMemory = 1 << 20

// Spill is a spool file that starts in memory (a memfd, unlinked as
// any spool file is) and moves to an unlinked file in dir once more than
// InMemory bytes were written to it. It is written only through Write;
// File is the file that holds what was written, wherever it is by then.
type Spill struct {
	f        *os.File
	dir      string
	pattern  string
	inMemory bool
	n        int64
	err      error // the first failed write: what a copy's error was not a read's
}

// NewSpill makes an empty spill file; pattern names it, as for Create.
func NewSpill(dir, pattern string) (*Spill, error) {
	s := &Spill{dir: dir, pattern: pattern}
	if fd, err := unix.MemfdCreate(pattern, unix.MFD_CLOEXEC); err == nil {
		s.f, s.inMemory = os.NewFile(uintptr(fd), "memfd:"+pattern), true
		return s, nil
	}
	// No memfd (an old kernel, a seccomp filter): on disk from the start.
	f, err := Create(dir, pattern)
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

// Write appends p, moving the file to disk first when p would take it
// past InMemory bytes.
func (s *Spill) Write(p []byte) (int, error) {
	if s.inMemory && s.n+int64(len(p)) > InMemory {
		if err := s.toDisk(); err != nil {
			s.err = err
			return 0, err
		}
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// toDisk copies what is in memory to a file in dir and goes on there.
func (s *Spill) toDisk() error {
	f, err := Create(s.dir, s.pattern)
	if err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := io.Copy(f, s.f); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	s.f.Close()
	s.f, s.inMemory = f, false
	return nil
}

// Len is how many bytes were written.
func (s *Spill) Len() int64 { return s.n }

// File is the file that holds what was written, its offset at the end.
// Write no more through the Spill once it is taken: closing it is the
// caller's.
func (s *Spill) File() *os.File { return s.f }

// Close closes the file.
func (s *Spill) Close() error { return s.f.Close() }

// Fill spools all of r (see Spill) and returns the file, at its first
// byte, and how many bytes it holds. A failed read is an error the
// caller can tell from a failed write by errors.Is(err, ErrRead).
func Fill(dir, pattern string, r io.Reader) (*os.File, int64, error) {
	s, err := NewSpill(dir, pattern)
	if err != nil {
		return nil, 0, err
	}
	if _, err := Copy(s, r); err != nil {
		s.Close()
		if s.err == nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrRead, err)
		}
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	f := s.File()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	return f, s.Len(), nil
}

// Copy is io.Copy through a buffer kept for the next copy: a server
// copies each message a few times, and a fresh buffer each time was
// most of what it allocated per message. Neither side's ReadFrom or
// WriteTo is used, since an *os.File's makes a buffer of its own when
// the other side is a pipe.
func Copy(w io.Writer, r io.Reader) (int64, error) {
	b := buffers.Get().(*[]byte)
	defer buffers.Put(b)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, *b)
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// ErrRead marks Fill's errors that came from reading.
var ErrRead = errors.New("read")
