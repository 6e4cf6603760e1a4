package lists

import (
	"slices"
	"strings"
	"testing"
)

func TestFromAddresses(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"spam@evil.example", []string{"spam@evil.example"}},
		{"spam(comment)@evil.example", []string{"spam@evil.example"}},
		{"spam@(c)evil.example(c)", []string{"spam@evil.example"}},
		{"spam@evil(nested (comment) here).example", []string{"spam@evil.example"}},
		{"(a comment with spam@good.example) spam@evil.example", []string{"spam@evil.example"}},
		{"spam\x00@evil.example", []string{"spam@evil.example"}},
		{"<spam\x00@evil.example>", []string{"spam@evil.example"}},
		{"sp\x00am@evil.example", []string{"spam@evil.example"}},
		{`"spam"@evil.example`, []string{"spam@evil.example"}},
		{`"sp\am"@evil.example`, []string{"spam@evil.example"}},
		{"spam . x @ evil . example", []string{"spam.x@evil.example"}},
		{"Evil Spammer <spam@evil.example>", []string{"spam@evil.example"}},
		{`"good@good.example" <spam@evil.example>`, []string{"spam@evil.example"}},
		{`Evil (good@good.example) <spam(x)@evil.example>`, []string{"spam@evil.example"}},
		{"=?utf-8?q?B=C3=A4d?= <BAD@Spam.Example>", []string{"BAD@Spam.Example"}},
		{"a@x.example, Bee <b@y.example>", []string{"a@x.example", "b@y.example"}},
		{"friends: a@x.example, b@y.example;, c@z.example", []string{"a@x.example", "b@y.example", "c@z.example"}},
		{"<@relay.example,@r2.example:spam@evil.example>", []string{"spam@evil.example"}},
		{"spam@[192.0.2.1]", []string{"spam@[192.0.2.1]"}},
		{"spam@evil.example\r\n (folded comment)", []string{"spam@evil.example"}},
		{`"unterminated <bad@spam.example>`, []string{"bad@spam.example"}},
		{"<bad@spam.example", []string{"bad@spam.example"}},
		{"undisclosed-recipients:;", nil},
		{"no address here", nil},
		{"", nil},
	} {
		if got := FromAddresses([]string{c.in}); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// A header From block entry is not evaded by comments, quoting or a NUL.
func TestFromBlockNotEvaded(t *testing.T) {
	l := compileList(t, "match: header-from\naction: block\nspam@evil.example\n")
	for _, from := range []string{"spam(comment)@evil.example", "spam\x00@evil.example", `"spam"@evil.example`, "Spam <spam (x) @ evil.example>", "SPAM@EVIL.EXAMPLE"} {
		q := Query{HeaderFrom: FromAddresses([]string{from})}
		if _, ok := l.Match(&q); !ok {
			t.Errorf("%q (%q) passes", from, q.HeaderFrom)
		}
	}
}

func FuzzFromAddresses(f *testing.F) {
	for _, s := range []string{"spam(c)@evil.example", "A <a@x>, b@y", "g: a@x;", `"q\"x" <a@b>`, "<@r:a@b>", "(((", `"`, "[1.2.3.4", "a\x00@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		as := FromAddresses([]string{v})
		if len(as) > len(v) {
			t.Fatalf("%d addresses from %d bytes", len(as), len(v))
		}
		for _, a := range as {
			if !strings.Contains(a, "@") || strings.ContainsAny(a, "\x00\r\n") || len(a) > len(v) {
				t.Fatalf("%q from %q", a, v)
			}
		}
	})
}
