package stream

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncode(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"alice@example.org", "alice@example.org"},
		{"a b c", "a b c"},
		{" a", "%20a"},
		{"a ", "a%20"},
		{" ", "%20"},
		{"  ", "%20%20"},
		{"100%", "100%25"},
		{"%25", "%2525"},
		{"a\r\nb", "a%0D%0Ab"},
		{"\x00", "%00"},
		{"a\tb", "a%09b"},
		{"\x7f", "%7F"},
		{"\x1f", "%1F"},
		{"caf\xe9", "caf%E9"},
		{"\xc3\xa9", "\xc3\xa9"}, // é stays readable
		{"\xef\xbf\xbd", "\xef\xbf\xbd"},
		{"\xc3", "%C3"},
		{"\xe2\x82", "%E2%82"},
		{"a@b>\r\nMf-Verdict: accept", "a@b>%0D%0AMf-Verdict: accept"},
	} {
		if got := Encode(tt.in); got != tt.want {
			t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got, err := Decode(tt.want); err != nil || got != tt.in {
			t.Errorf("Decode(%q) = %q, %v; want %q", tt.want, got, err, tt.in)
		}
	}
}

func TestEncodeEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, v := range []string{string(rune(0)) + "x", "x" + string([]byte{byte(c)}) + "x", string([]byte{byte(c)})} {
			e := Encode(v)
			checkEncoded(t, v, e)
			if d, err := Decode(e); err != nil || d != v {
				t.Errorf("Decode(Encode(%q)) = %q, %v", v, d, err)
			}
		}
	}
}

// checkEncoded: an encoded value is one field value that textproto gives
// back unchanged: no control byte, no space to trim, valid UTF-8.
func checkEncoded(t *testing.T, v, e string) {
	t.Helper()
	for i := 0; i < len(e); i++ {
		if e[i] < 0x20 || e[i] == 0x7f {
			t.Fatalf("Encode(%q) = %q holds byte %#x", v, e, e[i])
		}
	}
	if strings.HasPrefix(e, " ") || strings.HasSuffix(e, " ") {
		t.Fatalf("Encode(%q) = %q has a space at an end", v, e)
	}
	if !utf8.ValidString(e) {
		t.Fatalf("Encode(%q) = %q is not UTF-8", v, e)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{"%", "%4", "a%", "a%4", "%G0", "%0G", "%%", "%%41", "100%", "% 41", "%\n0", "%-1", "x%zz"} {
		if got, err := Decode(in); err == nil {
			t.Errorf("Decode(%q) = %q, want an error", in, got)
		}
	}
	for in, want := range map[string]string{"%41": "A", "%4a%4A": "JJ", "%25": "%", "a%20b": "a b", "no escapes": "no escapes", "%00": "\x00"} {
		if got, err := Decode(in); err != nil || got != want {
			t.Errorf("Decode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
