package verdict

import (
	"strings"
	"testing"
)

func TestParseStringRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want Verdict
		str  string
	}{
		{"continue", Verdict{Action: Continue}, "continue"},
		{"accept", Verdict{Action: Accept}, "accept"},
		{"discard", Verdict{Action: Discard}, "discard"},
		{"quarantine", Verdict{Action: Quarantine}, "quarantine"},
		{"quarantine Looks like a virus", Verdict{Quarantine, Reply{Text: "Looks like a virus"}}, "quarantine Looks like a virus"},
		{"reject 554 5.7.1 Spam", Verdict{Reject, Reply{554, "5.7.1", "Spam"}}, "reject 554 5.7.1 Spam"},
		{"reject 550", Verdict{Reject, Reply{Code: 550}}, "reject 550"},
		{"reject 550 No such user here", Verdict{Reject, Reply{Code: 550, Text: "No such user here"}}, "reject 550 No such user here"},
		{"tempfail 451 4.7.1 Try again later", Verdict{Tempfail, Reply{451, "4.7.1", "Try again later"}}, "tempfail 451 4.7.1 Try again later"},
		{"tempfail 421 4.3.2", Verdict{Tempfail, Reply{421, "4.3.2", ""}}, "tempfail 421 4.3.2"},
		// Case and surrounding space are forgiven; String writes the canonical form.
		{"  REJECT   550  5.7.1   Go  away ", Verdict{Reject, Reply{550, "5.7.1", "Go away"}}, "reject 550 5.7.1 Go away"},
		{"Accept", Verdict{Action: Accept}, "accept"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if v != tt.want {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, v, tt.want)
		}
		if s := v.String(); s != tt.str {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
		again, err := Parse(v.String())
		if err != nil || again != v {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", v.String(), again, err, v)
		}
	}
}

func TestEveryActionRoundTrips(t *testing.T) {
	for a := Continue; a <= Tempfail; a++ {
		name := a.String()
		if strings.HasPrefix(name, "action(") {
			t.Fatalf("action %d has no name", int(a))
		}
		got, err := ParseAction(name)
		if err != nil || got != a {
			t.Errorf("ParseAction(%q) = %v, %v; want %v", name, got, err, a)
		}
		var v Verdict
		switch a {
		case Tempfail:
			v = New(a, Reply{451, "4.7.1", "x"})
		case Quarantine:
			v = New(a, Reply{Text: "x"}) // a quarantine carries a reason only
		default:
			v = New(a, Reply{550, "5.7.1", "x"})
		}
		back, err := Parse(v.String())
		if err != nil || back != v {
			t.Errorf("%v: Parse(%q) = %#v, %v; want %#v", a, v.String(), back, err, v)
		}
	}
	if s := Action(42).String(); s != "action(42)" {
		t.Errorf("Action(42).String() = %q", s)
	}
	if _, err := ParseAction("bounce"); err == nil {
		t.Error(`ParseAction("bounce") succeeded`)
	}
}

func TestBareRefusalGetsGenericReply(t *testing.T) {
	v, err := Parse("reject")
	if err != nil || v.Reply != DefaultReject {
		t.Errorf(`Parse("reject") = %#v, %v; want reply %#v`, v, err, DefaultReject)
	}
	v, err = Parse("tempfail")
	if err != nil || v.Reply != DefaultTempfail {
		t.Errorf(`Parse("tempfail") = %#v, %v; want reply %#v`, v, err, DefaultTempfail)
	}
	// The generic replies say nothing about how the site filters.
	for _, r := range []Reply{DefaultReject, DefaultTempfail} {
		for _, w := range []string{"list", "spam", "virus", "clam", "dnsbl"} {
			if strings.Contains(strings.ToLower(r.Text), w) {
				t.Errorf("generic reply %q names %q", r, w)
			}
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "unknown action"},
		{"bounce", "unknown action"},
		{"reject 450 4.7.1 Later", "needs a 5xx"},
		{"reject 250 2.0.0 OK", "needs a 5xx"},
		{"tempfail 550 5.7.1 No", "needs a 4xx"},
		{"tempfail 250", "needs a 4xx"},
		{"reject 550 4.7.1 Mixed", "does not agree"},
		{"tempfail 451 5.7.1 Mixed", "does not agree"},
		{"reject 5.7.1 No code", "not a 2xx, 4xx or 5xx"},
		{"reject 55 short", "not a 2xx, 4xx or 5xx"},
		{"reject 650 bad class", "not a 2xx, 4xx or 5xx"},
		{"reject 550 5.7.1 bell\a", "control character"},
		{"reject 550 5.7.1 del\x7f", "control character"},
		{"accept 250 OK", "takes no reply"},
		{"continue now", "takes no reply"},
		{"discard it", "takes no reply"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", tt.in, v)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error %q, want it to say %q", tt.in, err, tt.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	good := []struct {
		in   string
		want Reply
	}{
		{"550 5.7.1 Access denied", Reply{550, "5.7.1", "Access denied"}},
		{"451 4.7.1", Reply{451, "4.7.1", ""}},
		{"554", Reply{Code: 554}},
		{"250 2.0.0 OK", Reply{250, "2.0.0", "OK"}},
		{"550 5.123.456 Long status", Reply{550, "5.123.456", "Long status"}},
		{"550 text 5.7.1", Reply{Code: 550, Text: "text 5.7.1"}},
		{"550\t5.7.1\tTabbed  text", Reply{550, "5.7.1", "Tabbed text"}},
		{"550 5.7.1x not a status", Reply{Code: 550, Text: "5.7.1x not a status"}},
	}
	for _, tt := range good {
		r, err := ParseReply(tt.in)
		if err != nil || r != tt.want {
			t.Errorf("ParseReply(%q) = %#v, %v; want %#v", tt.in, r, err, tt.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty reply"},
		{"   ", "empty reply"},
		{"5500 5.7.1 x", "not a 2xx, 4xx or 5xx"},
		{"150 x", "not a 2xx, 4xx or 5xx"},
		{"x50 5.7.1", "not a 2xx, 4xx or 5xx"},
		{"550 4.7.1 x", "does not agree"},
		{"450 2.0.0 x", "does not agree"},
		{"550 5.7.1 nul\x00byte", "control character"},
		{"550 5.7.1 esc\x1b[0m", "control character"},
	}
	for _, tt := range bad {
		r, err := ParseReply(tt.in)
		if err == nil {
			t.Errorf("ParseReply(%q) = %#v, want an error", tt.in, r)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseReply(%q) error %q, want it to say %q", tt.in, err, tt.want)
		}
	}
}

func TestReplyString(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{550, "5.7.1", "Access denied"}, "550 5.7.1 Access denied"},
		{Reply{Code: 550}, "550"},
		{Reply{Code: 550, Text: "No"}, "550 No"},
		{Reply{451, "4.7.1", ""}, "451 4.7.1"},
	}
	for _, tt := range tests {
		if s := tt.r.String(); s != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, s, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	want := map[Action]int{
		Continue:   0,
		Accept:     99,
		Discard:    99,
		Quarantine: 99,
		Reject:     100,
		Tempfail:   111,
	}
	for a, code := range want {
		if got := a.ExitCode(); got != code {
			t.Errorf("%v.ExitCode() = %d, want %d", a, got, code)
		}
		if got := (Verdict{Action: a}).ExitCode(); got != code {
			t.Errorf("Verdict{%v}.ExitCode() = %d, want %d", a, got, code)
		}
		if a.Final() != (a != Continue) {
			t.Errorf("%v.Final() = %v", a, a.Final())
		}
	}
	// The exit codes are qmail's; a stage error is none of them.
	if ExitContinue != 0 || ExitAccept != 99 || ExitReject != 100 || ExitTempfail != 111 || ExitError != 75 {
		t.Error("exit code constants changed")
	}
	for a := range want {
		if a.ExitCode() == ExitError {
			t.Errorf("%v exits with the error code", a)
		}
	}
}

func TestNew(t *testing.T) {
	r := Reply{550, "5.7.1", "No"}
	if v := New(Accept, r); v.Reply != (Reply{}) {
		t.Errorf("New(Accept) kept reply %#v", v.Reply)
	}
	if v := New(Reject, r); v.Reply != r || v.Action != Reject {
		t.Errorf("New(Reject) = %#v", v)
	}
	if v := New(Quarantine, Reply{Text: "why"}); v.String() != "quarantine why" {
		t.Errorf("New(Quarantine).String() = %q", v.String())
	}
}

// FuzzVerdictParse: Parse never panics, and what it accepts comes back
// the same through String, as it does when a stage passes a verdict on.
func FuzzVerdictParse(f *testing.F) {
	for _, s := range []string{
		"continue", "accept", "discard", "quarantine", "quarantine Virus found",
		"reject", "tempfail", "reject 550 5.7.1 Message rejected",
		"tempfail 451 4.7.1 Try again later", "reject 550", "reject 550 4.7.1",
		"tempfail 421 4.3.2 Service shutting down", "REJECT 554 5.7.1  Spam ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if v.Action < Continue || v.Action > Tempfail {
			t.Fatalf("Parse(%q) gave action %d", s, int(v.Action))
		}
		again, err := Parse(v.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %#v, but Parse(%q): %v", s, v, v.String(), err)
		}
		if again != v {
			t.Fatalf("Parse(%q) = %#v, Parse(String()) = %#v", s, v, again)
		}
		switch v.Action {
		case Reject:
			if v.Reply.Code/100 != 5 {
				t.Fatalf("Parse(%q): reject with %d", s, v.Reply.Code)
			}
		case Tempfail:
			if v.Reply.Code/100 != 4 {
				t.Fatalf("Parse(%q): tempfail with %d", s, v.Reply.Code)
			}
		}
	})
}
