package stream

import (
	"reflect"
	"testing"
)

func TestInputKind(t *testing.T) {
	for in, want := range map[string]Input{"": MessageInput, "auto": AutoInput, "stream": StreamInput, "message": MessageInput} {
		f := Flags{Input: in}
		if got := f.InputKind(); got != want {
			t.Errorf("Input %q: %v, want %v", in, got, want)
		}
	}
}

func qmailEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagsEnvelopeFromQmailEnvironment(t *testing.T) {
	env := qmailEnv(map[string]string{
		"SENDER":        "alice@example.org",
		"RECIPIENT":     "bob@example.com",
		"TCPREMOTEIP":   "192.0.2.7",
		"TCPREMOTEHOST": "mail.example.org",
	})
	got := (&Flags{}).Envelope(env)
	want := Envelope{
		Phase:      "data",
		ClientAddr: "192.0.2.7",
		ClientName: "mail.example.org",
		MailFrom:   "alice@example.org",
		Rcpts:      []string{"bob@example.com"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestFlagsBeatEnvironment(t *testing.T) {
	env := qmailEnv(map[string]string{
		"SENDER":        "env@example.org",
		"RECIPIENT":     "env@example.com",
		"TCPREMOTEIP":   "198.51.100.1",
		"TCPREMOTEHOST": "env.example.org",
	})
	f := Flags{
		Phase:      "rcpt",
		From:       " <flag@example.org> ",
		Rcpt:       []string{"<one@example.com>", "two@example.com"},
		Client:     "192.0.2.7",
		ClientName: "flag.example.org",
		Helo:       "helo.example.org",
		AuthUser:   "alice",
	}
	got := f.Envelope(env)
	want := Envelope{
		Phase:      "rcpt",
		ClientAddr: "192.0.2.7",
		ClientName: "flag.example.org",
		Helo:       "helo.example.org",
		AuthUser:   "alice",
		MailFrom:   "flag@example.org",
		Rcpts:      []string{"one@example.com", "two@example.com"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestFlagsEnvelopeEmpty(t *testing.T) {
	got := (&Flags{}).Envelope(qmailEnv(nil))
	if !reflect.DeepEqual(got, Envelope{Phase: "data"}) {
		t.Errorf("got %#v, want an empty data envelope", got)
	}
	// qmail's null sender is an empty SENDER.
	got = (&Flags{}).Envelope(qmailEnv(map[string]string{"SENDER": "", "RECIPIENT": "<postmaster>"}))
	if got.MailFrom != "" || !reflect.DeepEqual(got.Rcpts, []string{"postmaster"}) {
		t.Errorf("got %#v", got)
	}
}
