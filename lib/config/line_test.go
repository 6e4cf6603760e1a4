package config

import (
	"io"
	"strings"
	"testing"
)

// endless is a reader of one line that never ends, counting what was
// read of it.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += len(p)
	return len(p), nil
}

// A huge line is refused with its file and line, after reading little
// more than the bound: not the whole file into memory first.
func TestLongLineRefusedWithItsLine(t *testing.T) {
	huge := &endless{}
	r := io.MultiReader(strings.NewReader("verbose\n# a comment\n"), io.LimitReader(huge, 100<<20))
	_, err := load("/etc/mf/mf.conf", "quota", r, func(string) (string, bool) { return "", false })
	if err == nil || !strings.HasPrefix(err.Error(), "/etc/mf/mf.conf:3: line longer than 64 KiB") {
		t.Fatalf("err %v", err)
	}
	if huge.n > 1<<20 {
		t.Fatalf("read %d bytes of the line before refusing it", huge.n)
	}
	if _, err := load("f", "quota", strings.NewReader("quota.rule "+strings.Repeat("x", 60<<10)+"\n"), func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("a 60 KiB line: %v", err)
	}
}
