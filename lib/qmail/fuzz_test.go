package qmail

import (
	"bytes"
	"testing"
)

func FuzzReadEnvelope(f *testing.F) {
	f.Add([]byte("Fa@example.org\x00Tb@example.net\x00\x00"))
	f.Add([]byte("F\x00\x00"))
	f.Add([]byte("Fa\x00Tb\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		env, err := ReadEnvelope(bytes.NewReader(in))
		if err != nil {
			if c := ExitCode(err); c != ExitFormat && c != ExitRead {
				t.Fatalf("exit %d for %v", c, err)
			}
			return
		}
		// What was read writes back as the prefix it was read from.
		if out := env.Bytes(); !bytes.HasPrefix(in, out) {
			t.Fatalf("%q read as %+v writes %q", in, env, out)
		}
	})
}

func FuzzParseReceived(f *testing.F) {
	f.Add([]byte("Received: from unknown (HELO client.example.test) (127.0.0.1)\n  by mx.example.test with SMTP; 1 Dec 2026 21:58:00 -0000"))
	f.Add([]byte("Received: from h (u@1.2.3.4)\n  by mx with ESMTPA; d"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, ok := ParseReceived(in)
		if !ok {
			return
		}
		for _, v := range []string{r.Host, r.Helo, r.Info, r.IP, r.Local, r.Proto} {
			if !safe(v) {
				t.Fatalf("unsafe value %q from %q", v, in)
			}
		}
		if r.IP == "" || r.Host == "" {
			t.Fatalf("empty value from %q", in)
		}
	})
}
