// Package spamd is a client for SpamAssassin's spamd: the SPAMC/1.5
// protocol's CHECK, SYMBOLS, HEADERS and REPORT commands.
package spamd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mf/lib/netaddr"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Commands this client sends.
const (
	Check   = "CHECK"
	Symbols = "SYMBOLS"
	Headers = "HEADERS"
	Report  = "REPORT"
)

// MaxReply bounds what is read back: a rewritten header block or a
// report, never a whole message.
const MaxReply = 4 << 20

// Client talks to the first of Addrs that answers.
type Client struct {
	Addrs          []string // "unix:/path" or "tcp:host:port" (or a bare /path, host:port)
	ConnectTimeout time.Duration
	Timeout        time.Duration // whole scan, once connected
}

// Response is spamd's answer.
type Response struct {
	Code      int    // sysexits value; 0 is EX_OK
	Message   string // "EX_OK"
	Spam      bool
	Score     float64
	Threshold float64
	Symbols   []string // SYMBOLS: the rules that hit
	Body      []byte   // HEADERS: the header block; REPORT: the report
	Addr      string
}

// ErrUnavailable is wrapped when no server could be reached or none
// answered in time: the scan did not happen.
var ErrUnavailable = errors.New("spamd unavailable")

// CheckAddr refuses an address that cannot be dialled.
func CheckAddr(a string) error { return netaddr.Check("spamd", a) }

// userOK: a User: value is one word of printable bytes, as spamc sends.
func userOK(u string) bool {
	if u == "" || len(u) > 256 {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= 0x20 || u[i] == 0x7f {
			return false
		}
	}
	return true
}

// Scan sends the size bytes of msg with cmd for user ("" for spamd's
// default) and reads the answer. An error means no verdict.
func (c *Client) Scan(ctx context.Context, cmd, user string, msg io.Reader, size int64) (Response, error) {
	switch cmd {
	case Check, Symbols, Headers, Report:
	default:
		return Response{}, fmt.Errorf("spamd: unknown command %q", cmd)
	}
	if user != "" && !userOK(user) {
		return Response{}, fmt.Errorf("spamd: bad user name %q", user)
	}
	conn, addr, err := netaddr.DialFirst(ctx, c.Addrs, c.ConnectTimeout)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	t := c.Timeout
	if t == 0 {
		t = 120 * time.Second
	}
	conn.SetDeadline(time.Now().Add(t))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s SPAMC/1.5\r\nContent-length: %d\r\n", cmd, size)
	if user != "" {
		fmt.Fprintf(&req, "User: %s\r\n", user)
	}
	req.WriteString("\r\n")
	bw := bufio.NewWriterSize(conn, 64<<10)
	bw.Write(req.Bytes())
	n, err := io.Copy(bw, io.LimitReader(msg, size))
	if err == nil && n != size {
		err = fmt.Errorf("message is %d bytes, not %d", n, size)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return Response{}, fmt.Errorf("%w: %s: sending: %w", ErrUnavailable, addr, err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	r, err := ParseResponse(bufio.NewReader(conn), cmd)
	r.Addr = addr
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return r, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
		}
		return r, fmt.Errorf("spamd %s: %w", addr, err)
	}
	return r, nil
}

// The reply's patterns, compiled when first needed: a stage that
// starts for every message pays for no more than it uses.
var (
	statusRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^SPAMD/([0-9]+\.[0-9]+) +([0-9]+) *(.*)$`)
	})
	spamRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)^(True|False|Yes|No) *; *(-?[0-9]+(?:\.[0-9]+)?) */ *(-?[0-9]+(?:\.[0-9]+)?)$`)
	})
)

// ParseResponse reads spamd's answer to cmd: the status line, the
// header lines, a blank line, and the body SYMBOLS, HEADERS and REPORT
// have (bounded by Content-length or by MaxReply).
func ParseResponse(br *bufio.Reader, cmd string) (Response, error) {
	var r Response
	line, err := readLine(br)
	if err != nil {
		return r, fmt.Errorf("reading status line: %w", err)
	}
	m := statusRE().FindStringSubmatch(line)
	if m == nil {
		return r, fmt.Errorf("bad status line %q", trunc(line))
	}
	r.Code, err = strconv.Atoi(m[2])
	if err != nil || r.Code > 255 {
		return r, fmt.Errorf("bad status code %q", m[2])
	}
	r.Message = m[3]
	if r.Code != 0 {
		return r, fmt.Errorf("spamd said %d %s", r.Code, trunc(r.Message))
	}
	length := int64(-1)
	sawSpam := false
	for {
		line, err := readLine(br)
		if err != nil {
			if err == io.EOF && line == "" && sawSpam && (cmd == Check) {
				break
			}
			return r, fmt.Errorf("reading headers: %w", err)
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return r, fmt.Errorf("bad header line %q", trunc(line))
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "spam":
			sm := spamRE().FindStringSubmatch(v)
			if sm == nil {
				return r, fmt.Errorf("bad Spam header %q", trunc(v))
			}
			r.Spam = strings.EqualFold(sm[1], "true") || strings.EqualFold(sm[1], "yes")
			r.Score, _ = strconv.ParseFloat(sm[2], 64)
			r.Threshold, _ = strconv.ParseFloat(sm[3], 64)
			sawSpam = true
		case "content-length":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("bad Content-length %q", trunc(v))
			}
			length = n
		}
	}
	if !sawSpam {
		return r, errors.New("no Spam header in the reply")
	}
	if cmd == Check {
		return r, nil
	}
	if length > MaxReply {
		return r, fmt.Errorf("reply body of %d bytes is over %d", length, MaxReply)
	}
	var body []byte
	if length >= 0 {
		body = make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return r, fmt.Errorf("reading body: %w", err)
		}
	} else {
		body, err = io.ReadAll(io.LimitReader(br, MaxReply+1))
		if err != nil {
			return r, fmt.Errorf("reading body: %w", err)
		}
		if len(body) > MaxReply {
			return r, fmt.Errorf("reply body over %d bytes", MaxReply)
		}
	}
	r.Body = body
	if cmd == Symbols {
		for _, s := range strings.Split(strings.TrimSpace(string(body)), ",") {
			if s = strings.TrimSpace(s); s != "" {
				r.Symbols = append(r.Symbols, s)
			}
		}
	}
	return r, nil
}

// readLine reads a CRLF or LF line of at most 8 KiB, without its end.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > 8192 {
			return "", errors.New("line longer than 8192 bytes")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}
