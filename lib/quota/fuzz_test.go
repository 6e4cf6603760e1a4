package quota

import (
	"strings"
	"testing"
)

// FuzzParseRule: any line is a rule or an error, never a panic, and a
// rule parsed is whole: a key, a limit, a reply fitting its action.
func FuzzParseRule(f *testing.F) {
	f.Add(`per-sender key=sender limit=30/1m,500/1d reply="451 4.7.1 Too much mail from you"`)
	f.Add(`flood key=client-net+rcpt-domain limit=100/1h count=recipients window=fixed action=block:abusers for=6h dry-run`)
	f.Add(`all key=any limit=1000/1m reserve=100 action=reject`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if len(r.Key) == 0 || len(r.Limits) == 0 || r.Reply.Code/100 != map[bool]int{true: 4, false: 5}[r.Action.String() == "tempfail"] {
			t.Fatalf("%q parsed to %+v", s, r)
		}
		if strings.ContainsAny(r.Name, " =\x00") {
			t.Fatalf("name %q", r.Name)
		}
	})
}
