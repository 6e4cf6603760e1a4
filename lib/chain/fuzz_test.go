package chain

import "testing"

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
