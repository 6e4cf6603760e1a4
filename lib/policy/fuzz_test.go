package policy

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func FuzzRead(f *testing.F) {
	f.Add(req1)
	f.Add(req1 + req1)
	f.Add("request=smtpd_access_policy\r\nsender=\r\n\r\n")
	f.Add("x\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		rd := NewReader(strings.NewReader(in))
		for i := 0; i < 100; i++ {
			r, err := rd.Read()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFormat) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if r.Get("request") != "smtpd_access_policy" {
				t.Fatalf("accepted %v", r.Attrs)
			}
			for k, v := range r.Attrs {
				if strings.ContainsAny(k, "=\n\x00") || strings.ContainsAny(v, "\n\x00") {
					t.Fatalf("bad attribute %q=%q", k, v)
				}
			}
		}
	})
}
