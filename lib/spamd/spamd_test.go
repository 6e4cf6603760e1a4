package spamd

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Replies as spamd 4.0.1 gives them (PROTOCOLS.md §8.1).
func TestParseResponse(t *testing.T) {
	for _, c := range []struct {
		name, cmd, in string
		spam          bool
		score, thr    float64
		symbols       string
		err           string
	}{
		{"check spam", Check, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n", true, 1000, 5, "", ""},
		{"check ham -0.0", Check, "SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.0 / 5.0\r\n\r\n", false, 0, 5, "", ""},
		{"check no blank line", Check, "SPAMD/1.1 0 EX_OK\r\nSpam: Yes ; 6 / 5\r\n", true, 6, 5, "", ""},
		{"symbols", Symbols, "SPAMD/1.1 0 EX_OK\r\nContent-length: 55\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,MSGID_SHORT,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO", true, 1000, 5, "GTUBE MSGID_SHORT NO_RECEIVED NO_RELAYS TVD_SPACE_RATIO", ""},
		{"symbols LF", Symbols, "SPAMD/1.1 0 EX_OK\nSpam: False ; 1.2 / 5.0\nContent-length: 5\n\nA,B\r\n", false, 1.2, 5, "A B", ""},
		{"bad command", Symbols, "SPAMD/1.0 76 Bad header line: BOGUS SPAMC/1.5\r\n", false, 0, 0, "", "76 Bad header line"},
		{"garbage", Check, "HTTP/1.0 200 OK\r\n\r\n", false, 0, 0, "", "bad status line"},
		{"no spam header", Check, "SPAMD/1.1 0 EX_OK\r\n\r\n", false, 0, 0, "", "no Spam header"},
		{"bad score", Check, "SPAMD/1.1 0 EX_OK\r\nSpam: True ; lots / 5.0\r\n\r\n", false, 0, 0, "", "bad Spam header"},
		{"short body", Symbols, "SPAMD/1.1 0 EX_OK\r\nContent-length: 55\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE", false, 0, 0, "", "reading body"},
		{"huge body", Report, "SPAMD/1.1 0 EX_OK\r\nContent-length: 999999999\r\nSpam: True ; 1 / 5\r\n\r\n", false, 0, 0, "", "over"},
		{"cut", Check, "SPAMD/1.1 0 EX_OK\r\nSpam: Tr", false, 0, 0, "", "unexpected EOF"},
	} {
		r, err := ParseResponse(bufio.NewReader(strings.NewReader(c.in)), c.cmd)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Spam != c.spam || r.Score != c.score || r.Threshold != c.thr || strings.Join(r.Symbols, " ") != c.symbols {
			t.Errorf("%s: got %+v", c.name, r)
		}
	}
}

// fake is a spamd that answers one request after reading all of it.
func fake(t *testing.T, reply string, got chan<- string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // the client half-closes
		got <- string(b)
		io.WriteString(c, reply)
	}()
	return "tcp:" + l.Addr().String()
}

func TestScanRequest(t *testing.T) {
	got := make(chan string, 1)
	addr := fake(t, "SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.5 / 5.0\r\nContent-length: 1\r\n\r\nX", got)
	c := &Client{Addrs: []string{"tcp:127.0.0.1:1", addr}, Timeout: 5 * time.Second}
	msg := "Subject: hi\r\n\r\nbody\r\n"
	r, err := c.Scan(context.Background(), Symbols, "bob@example.org", strings.NewReader(msg), int64(len(msg)))
	if err != nil {
		t.Fatal(err)
	}
	want := "SYMBOLS SPAMC/1.5\r\nContent-length: 21\r\nUser: bob@example.org\r\n\r\n" + msg
	if req := <-got; req != want {
		t.Errorf("request %q, want %q", req, want)
	}
	if r.Score != 0.5 || r.Spam || r.Addr != addr || strings.Join(r.Symbols, ",") != "X" {
		t.Errorf("response %+v", r)
	}
	if _, err := c.Scan(context.Background(), Symbols, "bad user", strings.NewReader(msg), int64(len(msg))); err == nil {
		t.Error("a user name with a space was sent")
	}
}

func TestUnavailable(t *testing.T) {
	c := &Client{Addrs: []string{"tcp:127.0.0.1:1", "unix:/nonexistent/spamd.sock"}, ConnectTimeout: time.Second}
	_, err := c.Scan(context.Background(), Check, "", strings.NewReader(""), 0)
	if err == nil || !strings.Contains(err.Error(), "spamd unavailable") {
		t.Errorf("err %v", err)
	}
}

// FuzzParseResponse: any reply is parsed or refused, never a panic, and
// a parsed one has its Spam line.
func FuzzParseResponse(f *testing.F) {
	f.Add("SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE", Symbols)
	f.Add("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.0 / 5.0\r\n\r\n", Check)
	f.Add("SPAMD/1.0 76 Bad header line: BOGUS SPAMC/1.5\r\n", Report)
	f.Fuzz(func(t *testing.T, in, cmd string) {
		r, err := ParseResponse(bufio.NewReader(strings.NewReader(in)), cmd)
		if err == nil && (r.Code != 0 || len(r.Body) > MaxReply) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
