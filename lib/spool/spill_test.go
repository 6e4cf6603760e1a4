package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

// A small spill stays in memory; one past InMemory moves to the spool
// directory, unlinked, with every byte kept in order.
func TestSpill(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSpill(dir, "mf-test-*")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	small := bytes.Repeat([]byte("a line of a message\n"), 100)
	s.Write(small)
	if !s.inMemory || !strings.HasPrefix(s.File().Name(), "memfd:") {
		t.Fatalf("%d bytes: not in memory (%s)", s.Len(), s.File().Name())
	}
	var want bytes.Buffer
	want.Write(small)
	chunk := bytes.Repeat([]byte{'b'}, 64<<10)
	for s.Len() <= InMemory {
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
	}
	if s.inMemory {
		t.Fatalf("%d bytes: still in memory", s.Len())
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left in the spool directory: %v", names)
	}
	f := s.File()
	got, err := io.ReadAll(io.NewSectionReader(f, 0, s.Len()))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("read back %d bytes (%v), want %d", len(got), err, want.Len())
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// Fill tells a failed read from a failed write, and gives the file back
// at its first byte.
func TestFill(t *testing.T) {
	f, n, err := Fill(t.TempDir(), "mf-test-*", strings.NewReader("Subject: x\n\nbody\n"))
	if err != nil || n != 17 {
		t.Fatalf("%d bytes, %v", n, err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "Subject: x\n\nbody\n" {
		t.Errorf("read %q", b)
	}
	if _, _, err := Fill(t.TempDir(), "mf-test-*", io.MultiReader(strings.NewReader("part"), failing{})); !errors.Is(err, ErrRead) {
		t.Errorf("a failed read: %v, want ErrRead", err)
	}
}

// Copy keeps its buffer: a hundred copies of a message four buffers long,
// between a reader and a writer with no buffer of their own to lend,
// allocate less than one buffer in all, and every byte arrives.
func TestCopyKeepsItsBuffer(t *testing.T) {
	src := bytes.Repeat([]byte("a line of a message\n"), 4*64<<10/20)
	br := bytes.NewReader(src)
	var dst bytes.Buffer
	dst.Grow(len(src))
	r, w := struct{ io.Reader }{br}, struct{ io.Writer }{&dst}
	Copy(w, r) // the first takes the buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		br.Reset(src)
		dst.Reset()
		if n, err := Copy(w, r); err != nil || n != int64(len(src)) {
			t.Fatalf("copied %d of %d: %v", n, len(src), err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got >= 64<<10 && !raceDetector {
		t.Errorf("100 copies allocated %d bytes", got)
	}
	if !bytes.Equal(dst.Bytes(), src) {
		t.Error("bytes changed on the way")
	}
}
