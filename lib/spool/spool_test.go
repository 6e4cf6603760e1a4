package spool

import (
	"bufio"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestLF(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\rb\r", "a\rb\r"},
		{"\r\n\r\n\r\r\n", "\n\n\r\n"},
		{strings.Repeat("x", 4095) + "\r\n" + "y", strings.Repeat("x", 4095) + "\ny"},
	} {
		for _, size := range []int{16, 4096} {
			got, _ := io.ReadAll(LF(bufio.NewReaderSize(strings.NewReader(c.in), size)))
			if string(got) != c.want {
				t.Errorf("LF(%q) = %q, want %q", c.in[:min(len(c.in), 20)], got[:min(len(got), 20)], c.want[:min(len(c.want), 20)])
			}
		}
		same, err := Same(strings.NewReader(c.want), LF(strings.NewReader(c.in)))
		if !same || err != nil {
			t.Errorf("Same(%q): %v %v", c.want[:min(len(c.want), 20)], same, err)
		}
	}
	if same, _ := Same(strings.NewReader("a\n"), strings.NewReader("a\nb")); same {
		t.Error("a longer body is the same")
	}
}

// A Writer's buffer is kept for the next message: a hundred messages
// spooled and compared allocate less than one 64 KiB buffer in all, what
// one Writer left unwritten when closed never reaches the next, and a
// finished Writer takes nothing more.
func TestWriterKeepsItsBuffer(t *testing.T) {
	dir := t.TempDir()
	spoolOne := func(text string) *Message {
		t.Helper()
		w := NewWriter(dir)
		io.WriteString(w, text)
		m, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("more")); err == nil {
			t.Error("a write after Finish was taken")
		}
		return m
	}
	spoolOne("warm\r\n").Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		m := spoolOne("Subject: x\r\n\r\nbody\r\n")
		r, _ := m.Reader()
		if same, err := Same(r, strings.NewReader("Subject: x\n\nbody\n")); !same || err != nil {
			t.Fatalf("spooled message not the same: %v", err)
		}
		m.Close()
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got >= 64<<10 && !raceDetector {
		t.Errorf("100 messages allocated %d bytes", got)
	}

	w := NewWriter(dir)
	io.WriteString(w, "not for the next message")
	w.Close()
	m := spoolOne("next\r\n")
	defer m.Close()
	r, _ := m.Reader()
	if b, _ := io.ReadAll(r); string(b) != "next\n" {
		t.Errorf("the next message holds %q", b)
	}
}
