package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-milter"

	"mf/lib/bridge"
)

// smClient speaks milter as sendmail 8.17 does on a TCP socket: Nagle's
// algorithm on, and before each command a macro packet written by a
// write(2) of its own, then the command by another (PROTOCOLS.md §12).
// The bridge gives no reply to the macro packet, so unless it
// acknowledges the segment at once the second write waits for the
// peer's delayed ACK.
type smClient struct {
	c *net.TCPConn
	r *bufio.Reader
}

func dialSendmail(tb testing.TB, addr string) *smClient {
	tb.Helper()
	s := dialRaw(tb, addr)
	// Option negotiation: version 2 (what go-milter speaks), every
	// action, no protocol step left out.
	neg := make([]byte, 12)
	binary.BigEndian.PutUint32(neg[0:], 2)
	binary.BigEndian.PutUint32(neg[4:], 0x3f)
	s.write(tb, 'O', neg)
	if code, _ := s.read(tb); code != 'O' {
		tb.Fatalf("negotiation answered %q", code)
	}
	return s
}

// dialRaw connects as sendmail does, before option negotiation.
func dialRaw(tb testing.TB, addr string) *smClient {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetNoDelay(false); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tc.Close() })
	return &smClient{c: tc, r: bufio.NewReader(tc)}
}

func (s *smClient) write(tb testing.TB, code byte, data []byte) {
	tb.Helper()
	p := make([]byte, 5+len(data))
	binary.BigEndian.PutUint32(p, uint32(1+len(data)))
	p[4] = code
	copy(p[5:], data)
	s.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.c.Write(p); err != nil {
		tb.Fatal(err)
	}
}

func (s *smClient) read(tb testing.TB) (byte, []byte) {
	tb.Helper()
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n uint32
	if err := binary.Read(s.r, binary.BigEndian, &n); err != nil {
		tb.Fatal(err)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.r, p); err != nil {
		tb.Fatal(err)
	}
	return p[0], p[1:]
}

// step sends a macro packet for cmd, then cmd itself, and returns the
// reply's code and how long the step took.
func (s *smClient) step(tb testing.TB, cmd byte, data string, macros ...string) (byte, time.Duration) {
	tb.Helper()
	start := time.Now()
	m := []byte{cmd}
	for _, kv := range macros {
		m = append(m, kv...)
		m = append(m, 0)
	}
	s.write(tb, 'D', m)
	s.write(tb, cmd, []byte(data))
	code, _ := s.read(tb)
	return code, time.Since(start)
}

// transaction runs one message's steps and returns their durations.
func (s *smClient) transaction(tb testing.TB) []time.Duration {
	tb.Helper()
	var d []time.Duration
	want := func(code byte, took time.Duration) {
		tb.Helper()
		if code != 'c' && code != 'a' {
			tb.Fatalf("reply %q, want continue or accept", code)
		}
		d = append(d, took)
	}
	want(s.step(tb, 'C', "client.example.org\x004\x00\x19192.0.2.7\x00", "j\x00mx.example.test", "{daemon_name}\x00MTA", "v\x008.17.1"))
	want(s.step(tb, 'H', "helo.example.org\x00"))
	want(s.step(tb, 'M', "<a@example.org>\x00", "{mail_mailer}\x00esmtp", "i\x00abc123"))
	want(s.step(tb, 'R', "<b@example.com>\x00", "{rcpt_mailer}\x00local"))
	for _, h := range []string{"From\x00a@example.org\x00", "Subject\x00step\x00"} {
		s.write(tb, 'L', []byte(h))
		if code, _ := s.read(tb); code != 'c' {
			tb.Fatalf("header reply %q", code)
		}
	}
	s.write(tb, 'N', nil)
	if code, _ := s.read(tb); code != 'c' {
		tb.Fatalf("eoh reply %q", code)
	}
	s.write(tb, 'B', []byte("hello\r\n"))
	if code, _ := s.read(tb); code != 'c' {
		tb.Fatalf("body reply %q", code)
	}
	want(s.step(tb, 'E', ""))
	s.write(tb, 'A', nil) // abort: the next transaction on this connection
	return d
}

// TestSendmailSteps: with sendmail's write pattern over TCP no step of a
// no-stage bridge waits for a delayed ACK (about 40 ms on Linux). The
// bound is far above the bridge's own time and far below the stall.
func TestSendmailSteps(t *testing.T) {
	addr, _ := newTestBridge(t)
	s := dialSendmail(t, addr)
	var worst time.Duration
	var all []string
	for i := 0; i < 5; i++ {
		for _, d := range s.transaction(t) {
			worst = max(worst, d)
			all = append(all, d.Round(10*time.Microsecond).String())
		}
	}
	if worst > 15*time.Millisecond {
		t.Errorf("slowest step %s, want well under the 40 ms of a delayed ACK; steps: %s", worst, strings.Join(all, " "))
	}
}

// BenchmarkSendmailStep is the per-step latency of a no-stage bridge to a
// sendmail-like client over TCP, beside the same client against a bare
// responder that answers every command at once with no milter logic:
// the ratio, and ms beyond the baseline, are what the bridge adds.
func BenchmarkSendmailStep(b *testing.B) {
	perStep := func(b *testing.B, addr string) float64 {
		s := dialSendmail(b, addr)
		var total time.Duration
		steps := 0
		for b.Loop() {
			for _, d := range s.transaction(b) {
				total += d
				steps++
			}
		}
		ms := float64(total.Microseconds()) / 1000 / float64(steps)
		b.ReportMetric(ms, "ms/step")
		return ms
	}
	var base float64
	b.Run("baseline-responder", func(b *testing.B) {
		base = perStep(b, bareResponder(b))
	})
	b.Run("bridge-no-stage", func(b *testing.B) {
		addr, _ := newTestBridge(b)
		ms := perStep(b, addr)
		if base > 0 {
			b.ReportMetric(ms/base, "x-baseline")
			b.ReportMetric(ms-base, "ms-beyond")
		}
	})
}

// bareResponder answers milter packets with no logic: option
// negotiation echoed, nothing for macros and abort, continue (accept at
// end of message) for the rest; it acknowledges what it reads at once,
// so its steps are the loopback's own round trip.
func bareResponder(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(quickAckConn{c.(*net.TCPConn)})
				for {
					var n uint32
					if binary.Read(r, binary.BigEndian, &n) != nil {
						return
					}
					p := make([]byte, n)
					if _, err := io.ReadFull(r, p); err != nil {
						return
					}
					var reply []byte
					switch p[0] {
					case 'O':
						reply = p
					case 'D', 'A':
						continue
					case 'E':
						reply = []byte{'a'}
					default:
						reply = []byte{'c'}
					}
					out := binary.BigEndian.AppendUint32(nil, uint32(len(reply)))
					if _, err := c.Write(append(out, reply...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// quickAckConn is the responder's reading side with the same prompt ACK
// the bridge gives.
type quickAckConn struct{ c *net.TCPConn }

func (q quickAckConn) Read(p []byte) (int, error) {
	n, err := q.c.Read(p)
	quickAck(q.c)
	return n, err
}

// negotiateV6 connects as an MTA at protocol 6 that offers every action
// and every protocol flag, and returns the protocol mask the bridge asks
// for.
func negotiateV6(t *testing.T, addr string) (*smClient, uint32) {
	t.Helper()
	s := dialRaw(t, addr)
	neg := make([]byte, 12)
	binary.BigEndian.PutUint32(neg[0:], 6)
	binary.BigEndian.PutUint32(neg[4:], 0x1ff)
	binary.BigEndian.PutUint32(neg[8:], 0x1fffff)
	s.write(t, 'O', neg)
	code, p := s.read(t)
	if code != 'O' || len(p) < 12 {
		t.Fatalf("negotiation answered %q %x", code, p)
	}
	return s, binary.BigEndian.Uint32(p[8:])
}

// TestSilentSteps: an MTA that offers the no-reply flags (Postfix and
// sendmail at protocol 6) is told not to wait at a step no stage runs
// at, and gets no reply there; a step with a stage is answered, and its
// refusal arrives.
func TestSilentSteps(t *testing.T) {
	const conn, helo, mail, rcpt = 0x1000, 0x2000, 0x4000, 0x8000
	envelope := func(s *smClient) {
		s.write(t, 'D', []byte("C{client_addr}\x00192.0.2.7\x00"))
		s.write(t, 'C', []byte("client.example.org\x004\x00\x19192.0.2.7\x00"))
		s.write(t, 'H', []byte("helo.example.org\x00"))
		s.write(t, 'M', []byte("<a@example.org>\x00"))
	}

	addr, _ := newTestBridge(t)
	s, p := negotiateV6(t, addr)
	if want := uint32(conn | helo | mail | rcpt); p&want != want {
		t.Fatalf("no stage: protocol %#x, want no replies to connect, helo, mail and rcpt (%#x)", p, want)
	}
	envelope(s)
	s.write(t, 'R', []byte("<b@example.com>\x00"))
	s.write(t, 'R', []byte("<c@example.com>\x00"))
	s.write(t, 'D', []byte("Ei\x00ABC123\x00"))
	s.write(t, 'E', nil)
	if code, _ := s.read(t); code != 'a' {
		t.Fatalf("end of message: the first reply is %q, want accept", code)
	}
	log, _ := os.ReadFile(recPath)
	if !strings.Contains(string(log), `"rcpts":["b@example.com","c@example.com"]`) {
		t.Errorf("the record lacks the recipients given without a reply:\n%s", log)
	}

	addr, _ = newTestBridge(t, "r rcpt output=exit -- sh -c 'exit 100'")
	s, p = negotiateV6(t, addr)
	if p&rcpt != 0 || p&(conn|helo|mail) != conn|helo|mail {
		t.Fatalf("a rcpt stage: protocol %#x, want replies at rcpt only", p)
	}
	envelope(s)
	s.write(t, 'R', []byte("<b@example.com>\x00"))
	code, data := s.read(t)
	if code != 'y' || !strings.HasPrefix(string(data), "5") {
		t.Fatalf("rcpt refused by its stage: reply %q %q", code, data)
	}
}

// TestSilentContent: with a data stage the header fields, their end and
// the body chunks go without a reply where the MTA offers that, and the
// stage sees the message; spooling that fails is told at end of message
// as a tempfail.
func TestSilentContent(t *testing.T) {
	const hdr, eoh, body = 0x80, 0x40000, 0x80000
	addr, srv := newTestBridge(t, `d data output=exit -- sh -c 'if grep -q "^Subject: silent"; then exit 100; fi'`)
	s, p := negotiateV6(t, addr)
	if p&(hdr|eoh|body) != hdr|eoh|body {
		t.Fatalf("a data stage: protocol %#x, want no replies to header, EOH and body", p)
	}
	message := func(subject string) (byte, []byte) {
		s.write(t, 'C', []byte("client.example.org\x004\x00\x19192.0.2.7\x00"))
		s.write(t, 'M', []byte("<a@example.org>\x00"))
		s.write(t, 'R', []byte("<b@example.com>\x00"))
		s.write(t, 'L', []byte("From\x00a@example.org\x00"))
		s.write(t, 'L', []byte("Subject\x00"+subject+"\x00"))
		s.write(t, 'N', nil)
		s.write(t, 'B', []byte("hello\r\n"))
		s.write(t, 'E', nil)
		code, data := s.read(t)
		s.write(t, 'A', nil)
		return code, data
	}
	if code, data := message("silent"); code != 'y' || !strings.HasPrefix(string(data), "5") {
		t.Fatalf("the stage refuses what it read: reply %q %q", code, data)
	}
	if code, _ := message("other"); code != 'a' {
		t.Fatalf("a message the stage lets through: reply %q, want accept", code)
	}

	// Spooling that fails at a step given no reply is told at the end.
	g := srv.gen.Load()
	m := &backend{ctx: context.Background(), s: bridge.NewSession(g.cfg), g: g, silent: milter.OptNoBodyReply}
	if r, err := m.spooled(milter.OptNoBodyReply, errors.New("disk full")); r != nil || err != nil {
		t.Fatalf("a failed chunk given no reply: answered %v %v", r, err)
	}
	if r, _ := m.Body(&milter.Modifier{}); r == nil || r.Response().Code != 'y' || !strings.HasPrefix(string(r.Response().Data), "4") {
		t.Fatalf("end of message after a failed chunk: %v, want a tempfail", r)
	}
	if m.failed != nil {
		t.Error("the failure outlived its message")
	}
}
