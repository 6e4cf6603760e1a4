package stream

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzSplitHeader: whatever a stranger sends, the header part reads as
// header fields, and header, body start and rest are the message again.
func FuzzSplitHeader(f *testing.F) {
	for _, s := range []string{
		"Subject: a\r\n\r\nbody\r\n",
		"Subject: a\nno colon\nX: y\n",
		"Subject: a\n\tfolded\nFrom: b\n\nbody",
		" starts with a space\n",
		"",
		"Name : spaced\n\n",
		"X:\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		br := bufio.NewReader(strings.NewReader(msg))
		head, first, err := SplitHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadFields(bufio.NewReader(bytes.NewReader(head))); err != nil {
			t.Fatalf("head %q does not read: %v", head, err)
		}
		rest, _ := io.ReadAll(br)
		got := string(head) + string(first) + string(rest)
		// SplitHeader adds the empty line a header without one lacks.
		added := string(head[:len(head)-1]) + string(first) + string(rest)
		if got != msg && added != msg {
			t.Fatalf("%q split into %q + %q + %q", msg, head, first, rest)
		}
	})
}
