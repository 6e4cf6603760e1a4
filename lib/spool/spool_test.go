package spool

import (
	"bufio"
	"io"
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
