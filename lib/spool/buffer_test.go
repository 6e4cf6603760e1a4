package spool

import (
	"bytes"
	"io"
	"testing"
)

// TestBuffer: what is written reads back as written, in memory up to
// Small bytes and in a Spill past that, and goes on as a message from
// any offset, the memory given back once the message is closed.
func TestBuffer(t *testing.T) {
	for _, n := range []int{0, 100, Small, Small + 1, 2*Small + 5, InMemory + 1} {
		want := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
		b := NewBuffer(t.TempDir(), "mf-test-*")
		for rest := want; len(rest) > 0; {
			k := min(len(rest), 7000)
			if m, err := b.Write(rest[:k]); m != k || err != nil {
				t.Fatalf("%d bytes: write gave %d, %v", n, m, err)
			}
			rest = rest[k:]
		}
		if b.Len() != int64(n) {
			t.Errorf("%d bytes: length %d", n, b.Len())
		}
		if inMemory := b.spill == nil; inMemory != (n <= Small) {
			t.Errorf("%d bytes: in memory %v", n, inMemory)
		}
		got, err := io.ReadAll(io.NewSectionReader(b, 0, int64(n)+10))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
		// From past an envelope block, say.
		at := min(n, 3)
		m := b.Message(int64(at))
		if inMemory := m.File == nil; inMemory != (n <= Small) {
			t.Errorf("%d bytes: message in memory %v", n, inMemory)
		}
		r, err := m.Reader()
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(r)
		again, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(n)))
		if !bytes.Equal(got, want[at:]) || !bytes.Equal(again, want[at:]) {
			t.Errorf("%d bytes: the message from %d has %d bytes, then %d", n, at, len(got), len(again))
		}
		if size, _ := m.Size(); size != int64(n-at) {
			t.Errorf("%d bytes: message size %d", n, size)
		}
		m.Close()
		if b.mem != nil {
			t.Errorf("%d bytes: the memory is still held once the message is closed", n)
		}
	}
}
