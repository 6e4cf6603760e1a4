package clamd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseReply(t *testing.T) {
	for in, want := range map[string]Result{
		"stream: OK\x00": {},
		"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\x00": {Infected: true, Signature: "Eicar-Test-Signature.UNOFFICIAL"},
		"2: stream: Win.Test.EICAR_HDB-1 FOUND\x00":         {Infected: true, Signature: "Win.Test.EICAR_HDB-1"},
		"INSTREAM size limit exceeded. ERROR\x00":           {TooBig: true},
	} {
		got, err := ParseReply(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "stream: FOUND", "Can't allocate memory ERROR", "UNKNOWN COMMAND", "PONG"} {
		if _, err := ParseReply(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// fake is a clamd speaking INSTREAM that finds "EVIL" and refuses
// streams over max bytes as clamd does, closing the connection.
func fake(t *testing.T, max int) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				cmd := make([]byte, 10)
				if _, err := io.ReadFull(c, cmd); err != nil || string(cmd) != "zINSTREAM\x00" {
					io.WriteString(c, "UNKNOWN COMMAND\x00")
					return
				}
				var data []byte
				for {
					var n uint32
					if binary.Read(c, binary.BigEndian, &n) != nil {
						return
					}
					if n == 0 {
						break
					}
					if len(data)+int(n) > max {
						io.WriteString(c, "INSTREAM size limit exceeded. ERROR\x00")
						return
					}
					b := make([]byte, n)
					io.ReadFull(c, b)
					data = append(data, b...)
				}
				if bytes.Contains(data, []byte("EVIL")) {
					io.WriteString(c, "stream: Evil.Test FOUND\x00")
				} else {
					io.WriteString(c, "stream: OK\x00")
				}
			}()
		}
	}()
	return "tcp:" + l.Addr().String()
}

func TestScan(t *testing.T) {
	addr := fake(t, 1<<20)
	c := &Client{Addrs: []string{"unix:/nonexistent/clamd.ctl", addr}, Timeout: 5 * time.Second, Chunk: 7}
	ctx := context.Background()
	r, err := c.Scan(ctx, strings.NewReader("Subject: x\n\nan EVIL body split over chunks\n"))
	if err != nil || !r.Infected || r.Signature != "Evil.Test" || r.Addr != addr {
		t.Errorf("infected: %+v, %v", r, err)
	}
	r, err = c.Scan(ctx, strings.NewReader("Subject: x\n\nclean\n"))
	if err != nil || r.Infected {
		t.Errorf("clean: %+v, %v", r, err)
	}
	c.Chunk = 0
	r, err = c.Scan(ctx, bytes.NewReader(make([]byte, 2<<20)))
	if err != nil || !r.TooBig {
		t.Errorf("too big: %+v, %v", r, err)
	}
}

func TestUnavailable(t *testing.T) {
	c := &Client{Addrs: []string{"tcp:127.0.0.1:1"}, ConnectTimeout: time.Second}
	if _, err := c.Scan(context.Background(), strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "clamd unavailable") {
		t.Errorf("err %v", err)
	}
	for _, a := range []string{"unix:", "tcp:nohost", ""} {
		if CheckAddr(a) == nil {
			t.Errorf("%q accepted", a)
		}
	}
}

// A clamd that takes the stream and never answers: the scan timeout
// ends the wait, and it is an error, never a clean result.
func TestScanTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
	}()
	c := &Client{Addrs: []string{"tcp:" + l.Addr().String()}, Timeout: 300 * time.Millisecond}
	start := time.Now()
	r, err := c.Scan(context.Background(), strings.NewReader("Subject: x\n\nbody\n"))
	if err == nil || !strings.Contains(err.Error(), "clamd unavailable") || r.Infected || time.Since(start) > 5*time.Second {
		t.Errorf("%+v %v after %v", r, err, time.Since(start))
	}
}
