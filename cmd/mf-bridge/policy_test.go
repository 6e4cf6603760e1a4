package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/logger"
	"mf/lib/policy"
	"mf/lib/stream"
	"mf/lib/verdict"
)

func TestPolicyPhase(t *testing.T) {
	for state, want := range map[string]stream.Phase{"CONNECT": "connect", "EHLO": "helo", "HELO": "helo", "MAIL": "mail", "RCPT": "rcpt", "DATA": "", "END-OF-MESSAGE": "", "VRFY": "", "": ""} {
		if got := policyPhase(state); got != want {
			t.Errorf("%s: %q, want %q", state, got, want)
		}
	}
}

func TestPolicyEnvelope(t *testing.T) {
	rd := policy.NewReader(strings.NewReader("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nclient_name=\nhelo_name=h\nsender=a@example.org\nrecipient=b@example.net\nsasl_username=u\nqueue_id=ABC\nsize=12\n\n"))
	req, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	env := policyEnvelope(req, "rcpt")
	if env.ClientAddr != "192.0.2.1" || env.ClientName != "unknown" || env.Helo != "h" || env.MailFrom != "a@example.org" ||
		len(env.Rcpts) != 1 || env.Rcpts[0] != "b@example.net" || env.AuthUser != "u" || env.QueueID != "ABC" {
		t.Fatalf("%+v", env)
	}
	found := false
	for _, m := range env.Macros {
		found = found || m.Name == "{size}" && m.Value == "12"
	}
	if !found {
		t.Fatalf("no {size} macro: %v", env.Macros)
	}
}

func TestPolicyAnswer(t *testing.T) {
	for _, tc := range []struct {
		v    verdict.Verdict
		adds []string
		want string
	}{
		{verdict.Verdict{Action: verdict.Continue}, nil, "action=DUNNO\n\n"},
		{verdict.Verdict{Action: verdict.Accept}, nil, "action=OK\n\n"},
		{verdict.New(verdict.Reject, verdict.Reply{Code: 550, Status: "5.7.1", Text: "Blocked"}), nil, "action=REJECT 5.7.1 Blocked\n\n"},
		{verdict.New(verdict.Tempfail, verdict.Reply{Code: 451, Status: "4.7.1", Text: "Over quota"}), nil, "action=DEFER 4.7.1 Over quota\n\n"},
		{verdict.Verdict{Action: verdict.Discard}, nil, "action=DISCARD\n\n"},
		{verdict.Verdict{Action: verdict.Quarantine, Reply: verdict.Reply{Text: "held"}}, nil, "action=HOLD held\n\n"},
		{verdict.Verdict{Action: verdict.Continue}, []string{"X-Tag: yes"}, "action=PREPEND X-Tag: yes\n\n"},
	} {
		if got := policyAnswer(tc.v, tc.adds, "rcpt").Line(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestPolicyConnFaultClosesWithoutAnswer(t *testing.T) {
	srv := &server{log: logger.New("mf-bridge", io.Discard)}
	srv.gen.Store(&generation{cfg: &bridge.Config{Chain: &chain.Chain{Runner: &chain.Runner{}}, Log: srv.log}})
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { srv.policyConn(context.Background(), server, time.Minute); close(done) }()
	br := bufio.NewReader(client)
	// Two good requests over one connection, each answered.
	for range 2 {
		io.WriteString(client, "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n\n")
		if line, err := br.ReadString('\n'); err != nil || line != "action=DUNNO\n" {
			t.Fatalf("answer %q %v", line, err)
		}
		br.ReadString('\n')
	}
	// Then one Postfix would never send: no answer, the connection closed.
	io.WriteString(client, "request=smtpd_access_policy\nthis is not an attribute\n\n")
	if line, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("a bad request was answered: %q %v", line, err)
	}
	<-done
}
