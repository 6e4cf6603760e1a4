// Package clamd is a client for ClamAV's clamd: the INSTREAM command over
// a unix or TCP socket, several servers tried in turn.
package clamd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mf/lib/netaddr"
	"net"
	"strings"
	"time"
)

// Client scans with the first of Addrs that answers.
type Client struct {
	Addrs          []string      // "unix:/path" or "tcp:host:port" (or a bare /path, host:port)
	ConnectTimeout time.Duration // per address
	Timeout        time.Duration // whole scan, once connected
	Chunk          int           // INSTREAM chunk size; default 64 KiB
}

// Result is what clamd said about a stream.
type Result struct {
	Infected  bool
	Signature string // the signature name when Infected
	TooBig    bool   // clamd refused the stream: over its StreamMaxLength
	Addr      string // the server that answered
}

// ErrUnavailable is wrapped when no server could be reached or none
// answered in time: the scan did not happen.
var ErrUnavailable = errors.New("clamd unavailable")

// CheckAddr refuses an address that cannot be dialled.
func CheckAddr(a string) error { return netaddr.Check("clamd", a) }

func (c *Client) dial(ctx context.Context) (net.Conn, string, error) {
	conn, a, err := netaddr.DialFirst(ctx, c.Addrs, c.ConnectTimeout)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return conn, a, nil
}

func (c *Client) deadline(ctx context.Context) time.Time {
	t := c.Timeout
	if t == 0 {
		t = 120 * time.Second
	}
	dl := time.Now().Add(t)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	return dl
}

// Scan sends r to clamd with INSTREAM and returns its verdict. An error
// means the message was not scanned.
func (c *Client) Scan(ctx context.Context, r io.Reader) (Result, error) {
	conn, addr, err := c.dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(c.deadline(ctx))
	werr := send(conn, r, c.Chunk)
	var re readError
	if errors.As(werr, &re) {
		return Result{}, re.err
	}
	// clamd closes the connection after "size limit exceeded": its
	// reply is still there to be read after a failed write.
	reply, rerr := bufio.NewReader(conn).ReadString(0)
	if rerr != nil && reply == "" {
		if werr != nil {
			return Result{}, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, werr)
		}
		return Result{}, fmt.Errorf("%w: %s: reading reply: %w", ErrUnavailable, addr, rerr)
	}
	res, err := ParseReply(reply)
	res.Addr = addr
	if err != nil {
		return res, fmt.Errorf("clamd %s: %w", addr, err)
	}
	return res, nil
}

// readError is a failure reading the message, not talking to clamd.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

func send(w io.Writer, r io.Reader, chunk int) error {
	if chunk <= 0 {
		chunk = 64 << 10
	}
	bw := bufio.NewWriterSize(w, chunk+4)
	if _, err := bw.WriteString("zINSTREAM\x00"); err != nil {
		return err
	}
	buf := make([]byte, chunk)
	var hdr [4]byte
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			binary.BigEndian.PutUint32(hdr[:], uint32(n))
			bw.Write(hdr[:])
			if _, werr := bw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return readError{fmt.Errorf("reading message: %w", err)}
		}
	}
	bw.Write([]byte{0, 0, 0, 0})
	return bw.Flush()
}

// ParseReply reads one INSTREAM reply: "stream: OK", "stream: NAME
// FOUND", "INSTREAM size limit exceeded. ERROR", or another "... ERROR".
func ParseReply(s string) (Result, error) {
	s = strings.TrimRight(s, "\x00\r\n")
	// Inside an IDSESSION a reply starts with its request number.
	if i := strings.Index(s, ": stream: "); i > 0 && !strings.HasPrefix(s, "stream: ") {
		s = s[i+2:]
	}
	switch {
	case s == "stream: OK":
		return Result{}, nil
	case strings.HasPrefix(s, "stream: ") && strings.HasSuffix(s, " FOUND") && len(s) > len("stream:  FOUND"):
		sig := strings.TrimSpace(s[len("stream: ") : len(s)-len(" FOUND")])
		if sig == "" || bytes.ContainsAny([]byte(sig), "\x00\n") {
			return Result{}, fmt.Errorf("malformed reply %q", s)
		}
		return Result{Infected: true, Signature: sig}, nil
	case strings.Contains(s, "size limit exceeded"):
		return Result{TooBig: true}, nil
	case strings.HasSuffix(s, " ERROR"):
		return Result{}, fmt.Errorf("scan failed: %q", s)
	}
	return Result{}, fmt.Errorf("unexpected reply %q", s)
}
