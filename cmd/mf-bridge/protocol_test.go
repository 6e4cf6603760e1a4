package main

import (
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-milter"
)

// TestProtocolSkips: without a data stage the MTA is asked for neither
// header nor body, and the message is still accepted and recorded; with
// one it is asked for both.
func TestProtocolSkips(t *testing.T) {
	addr, _ := newTestBridge(t, "r rcpt output=exit -- true")
	s := dial(t, addr)
	if !s.ProtocolOption(milter.OptNoHeaders) || !s.ProtocolOption(milter.OptNoBody) || !s.ProtocolOption(milter.OptNoEOH) {
		t.Fatalf("no data stage: protocol %#x, want no headers, EOH or body", s.ProtocolOpts)
	}
	is(t, milter.ActContinue)(s.Conn("c.example", milter.FamilyInet, 25, "192.0.2.7"))
	is(t, milter.ActContinue)(s.Mail("a@example.org", nil))
	is(t, milter.ActContinue)(s.Rcpt("b@example.com", nil))
	var h textproto.Header
	h.Add("Subject", "x")
	is(t, milter.ActContinue)(s.Header(h))
	_, act, err := s.BodyReadFrom(strings.NewReader("body\r\n"))
	is(t, milter.ActAccept)(act, err)
	log, _ := os.ReadFile(recPath)
	if n := strings.Count(string(log), `"phase":"data"`); n != 1 {
		t.Errorf("%d data records:\n%s", n, log)
	}

	addr, _ = newTestBridge(t, "d data output=exit -- true")
	if s := dial(t, addr); s.ProtocolOption(milter.OptNoHeaders) || s.ProtocolOption(milter.OptNoBody) {
		t.Errorf("a data stage: protocol %#x skips what it reads", s.ProtocolOpts)
	}
}
