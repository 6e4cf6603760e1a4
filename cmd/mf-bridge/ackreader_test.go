package main

import (
	"net"
	"testing"
)

// ackReader stops acknowledging each read once the MTA's connect macros
// say Postfix, and keeps on for sendmail.
func TestAckReaderPostfix(t *testing.T) {
	for _, c := range []struct {
		macros  string
		postfix bool
	}{
		{"\x00\x00\x00\x2fDCj\x00mx.example.test\x00{daemon_name}\x00mx\x00v\x00Postfix 3.7.11\x00", true},
		{"\x00\x00\x00\x2fDCj\x00mx.example.test\x00{daemon_name}\x00MTA\x00v\x008.17.1\x00", false},
		{"\x00\x00\x00\x12Hhelo.example.org\x00", false},
	} {
		a, b := net.Pipe()
		go func() { b.Write([]byte(c.macros)); b.Close() }()
		r := &ackReader{c: a}
		buf := make([]byte, 512)
		r.Read(buf)
		if r.postfix != c.postfix {
			t.Errorf("%q: postfix %v, want %v", c.macros, r.postfix, c.postfix)
		}
		a.Close()
	}
}
