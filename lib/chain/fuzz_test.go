package chain

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mf/lib/stream"
)

// FuzzParse: a stage line from a configuration file is parsed into a
// stage that can run, or refused; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"lists connect,helo,mail,rcpt,data mf-lists check",
		`spam data timeout=60s input=message output=headers 1=reject reply="550 5.7.1 Spam" -- spamc -c`,
		"virus data input=message output=exit 1=reject on-error=accept clamdscan --no-summary -",
		`x data -- sh -c 'echo "a b" | tr a b'`,
		"x data a=b",
		"x rcpt 0=error prog \\\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := Parse(line)
		if err != nil {
			return
		}
		if len(s.Argv) == 0 || s.Argv[0] == "" || len(s.Phases) == 0 || s.TimeoutAt("data") <= 0 {
			t.Fatalf("%q parsed into a stage that cannot run: %+v", line, s)
		}
	})
}

// FuzzEnvVars: whatever the envelope (strangers choose every value), the
// variables for a stage fit exec's limits, hold no NUL, and keep whole
// recipients in order, saying when some were left out; or the envelope
// is refused as too big.
func FuzzEnvVars(f *testing.F) {
	f.Add("h.example", "a@example.org", "b@example.com", 3, 20)
	f.Add("h", "", "r@x", 1000, 170)
	f.Add("h\x00", "\xff\n", "\r\n", 70, 2000)
	f.Fuzz(func(t *testing.T, helo, from, rcpt string, n, size int) {
		n, size = n%3000, size%4000
		if n < 0 || size < 0 {
			return
		}
		e := stream.Envelope{Phase: stream.Data, Helo: helo, MailFrom: from}
		for i := 0; i < n; i++ {
			e.Rcpts = append(e.Rcpts, fmt.Sprintf("%d%s%s", i, rcpt, strings.Repeat("x", size)))
		}
		vars, err := envVars(&e)
		if err != nil {
			if !errors.Is(err, errEnvelopeTooBig) {
				t.Fatal(err)
			}
			return
		}
		total, kept, cut := 0, -1, false
		for _, v := range vars {
			total += len(v) + 1
			if strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("NUL in %.40q", v)
			}
			if r, ok := strings.CutPrefix(v, "RECIPIENTS="); ok {
				kept = 0
				if r != "" {
					kept = strings.Count(r, "\n") + 1
				}
				for i, l := range strings.Split(r, "\n")[:kept] {
					if l != stream.Encode(e.Rcpts[i]) {
						t.Fatalf("recipient %d: %.40q", i, l)
					}
				}
			}
			cut = cut || v == "RECIPIENTS_TRUNCATED=1"
		}
		if total > maxEnvelopeVars || kept < 0 || cut != (kept < n) {
			t.Fatalf("%d bytes, %d of %d recipients kept, truncated %v", total, kept, n, cut)
		}
	})
}
