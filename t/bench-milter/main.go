// Command bench-milter is the reference milter of t/bench-postfix: what
// the milter protocol alone costs beside Postfix, as the simplest filter
// written with go-milter is, its defaults kept (every step sent and
// answered) and one header field added at end of message:
// bench-milter unix:PATH. A test helper, not part of mf.
package main

import (
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"

	"github.com/emersion/go-milter"
)

func main() {
	path, ok := strings.CutPrefix(strings.Join(os.Args[1:], " "), "unix:")
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: bench-milter unix:PATH")
		os.Exit(2)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err == nil {
		err = os.Chmod(path, 0o666)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-milter:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "bench-milter: listening on", path)
	s := milter.Server{NewMilter: func() milter.Milter { return noop{} }, Actions: milter.OptAddHeader}
	if err := s.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "bench-milter:", err)
		os.Exit(1)
	}
}

// noop continues at every step and adds X-Bench-Milter at the end.
type noop struct{}

func (noop) Connect(string, string, uint16, net.IP, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Helo(string, *milter.Modifier) (milter.Response, error) { return milter.RespContinue, nil }
func (noop) MailFrom(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) RcptTo(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Header(string, string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Headers(textproto.MIMEHeader, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) BodyChunk([]byte, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Body(m *milter.Modifier) (milter.Response, error) {
	if err := m.AddHeader("X-Bench-Milter", "seen"); err != nil {
		return nil, err
	}
	return milter.RespAccept, nil
}
func (noop) Abort(*milter.Modifier) error { return nil }
