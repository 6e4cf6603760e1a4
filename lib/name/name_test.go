package name

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"a", "block", "per-sender", "Abuse_2.list-x", "0", strings.Repeat("x", MaxLen)} {
		if err := Valid(s); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	for _, s := range []string{"", "-a", ".a", "_a", "a b", "a/b", "a|b", "a=b", "a+b", "a\x00", "é", "a\n", strings.Repeat("x", MaxLen+1)} {
		if err := Valid(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{"block", "per-sender", "a b", "", "-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) != nil {
			return
		}
		// What goes into keys and file names unquoted must be plain.
		if strings.ContainsAny(s, " \t\n|/=+%\x00") || len(s) > MaxLen || s[0] == '.' || s[0] == '-' {
			t.Fatalf("%q accepted", s)
		}
	})
}
