package stage

import (
	"bytes"
	"context"
	"testing"
)

func TestDropFields(t *testing.T) {
	drop := []string{"X-Spam-*", "x-virus-status"}
	for _, c := range []struct{ in, want string }{
		{"X-Spam-Flag: NO\nFrom: a\n\nbody\n", "From: a\n\nbody\n"},
		{"From: a\nX-SPAM-Status: No, score=-5\n\ttests=FORGED\nSubject: s\n\n", "From: a\nSubject: s\n\n"},
		{"X-Virus-Status: Clean\r\nX-Virus-Scanned: elsewhere\r\n\r\n", "X-Virus-Scanned: elsewhere\r\n\r\n"},
		{"X-Virus-Status-Extra: kept\nX-Spam: kept\n\n", "X-Virus-Status-Extra: kept\nX-Spam: kept\n\n"},
		{"From: a\n\nX-Spam-Flag: in the body, kept\n", "From: a\n\nX-Spam-Flag: in the body, kept\n"},
		{"X-Long: a\n X-Spam-Flag: folded, not a field\n\n", "X-Long: a\n X-Spam-Flag: folded, not a field\n\n"},
		{"X-Spam-Flag : NO\n\n", "\n"},
		{"", ""},
	} {
		if got := string(dropFields([]byte(c.in), drop)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// A stage's Drop takes the message's own copies away and leaves the
// stage's fields, put on top.
func TestRunDrop(t *testing.T) {
	in := "X-Spam-Flag: NO\nSubject: hi\nX-Spam-Score: -9\n\nbody\n"
	code, out, err := runWith(t, Flags{Output: "message"}, in, func(context.Context, *Message) (*Decision, error) {
		return &Decision{AddHeaders: []string{"X-Spam-Flag: YES"}, Drop: []string{"X-Spam-*"}}, nil
	})
	if want := "X-Spam-Flag: YES\nSubject: hi\n\nbody\n"; err != nil || code != 0 || out != want {
		t.Errorf("exit %d, %v, out %q, want %q", code, err, out, want)
	}
}

// FuzzDropFields: whatever the header, dropping keeps every byte of
// the fields not named and of what follows the header, in order, and
// leaves no field that is named.
func FuzzDropFields(f *testing.F) {
	for _, s := range []string{"X-Spam-Flag: NO\nFrom: a\n\nbody\n", "x-spam-a:\n b\nc: d\r\n\r\n", "\n", ":\n\n", "X-Spam-Flag"} {
		f.Add([]byte(s))
	}
	drop := []string{"X-Spam-*", "X-Virus-Status"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := dropFields(raw, drop)
		if len(out) > len(raw) {
			t.Fatalf("grew: %q -> %q", raw, out)
		}
		if again := dropFields(out, drop); !bytes.Equal(again, out) {
			t.Fatalf("not settled: %q -> %q -> %q", raw, out, again)
		}
	})
}
