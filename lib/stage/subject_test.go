package stage

import "testing"

func TestPrefixSubject(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"From: a\nSubject: hi\n\n", "From: a\nSubject: [S] hi\n\n"},
		{"From: a\r\nsubject:hi\r\n\r\n", "From: a\r\nsubject:[S] hi\r\n\r\n"},
		{"Subject: [S] hi\n\n", "Subject: [S] hi\n\n"},
		{"From: a\n\nSubject: in the body\n", "Subject: [S]\nFrom: a\n\nSubject: in the body\n"},
		{"X-Long: a\n Subject: folded, not a field\n\n", "Subject: [S]\nX-Long: a\n Subject: folded, not a field\n\n"},
		{"", "Subject: [S]\n"},
	} {
		if got := string(prefixSubject([]byte(c.in), "[S] ", false)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}
