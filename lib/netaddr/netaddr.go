// Package netaddr is how mf names a server it connects to (clamd, spamd):
// unix:/PATH or a bare /PATH for a unix socket, tcp:HOST:PORT or
// HOST:PORT for TCP, and several of them tried in turn.
package netaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DefaultConnectTimeout is how long a connect may take when none is set.
const DefaultConnectTimeout = 5 * time.Second

// Split gives the network and address to dial.
func Split(a string) (network, address string) {
	switch {
	case strings.HasPrefix(a, "unix:"):
		return "unix", strings.TrimPrefix(a, "unix:")
	case strings.HasPrefix(a, "tcp:"):
		return "tcp", strings.TrimPrefix(a, "tcp:")
	case strings.HasPrefix(a, "/"):
		return "unix", a
	}
	return "tcp", a
}

// Check refuses an address that cannot be dialled; what names the server
// ("clamd") in the error.
func Check(what, a string) error {
	n, addr := Split(a)
	if addr == "" {
		return fmt.Errorf("empty %s address %q", what, a)
	}
	if n == "tcp" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s address %q: want unix:/PATH or tcp:HOST:PORT", what, a)
		}
	}
	return nil
}

// DialFirst connects to the first of addrs that answers, each given
// timeout (0: DefaultConnectTimeout), and says which it was. The error,
// when none answers, joins each one's.
func DialFirst(ctx context.Context, addrs []string, timeout time.Duration) (net.Conn, string, error) {
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	var errs []error
	for _, a := range addrs {
		n, addr := Split(a)
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, n, addr)
		if err == nil {
			return conn, a, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, "", errors.New("no address configured")
	}
	return nil, "", errors.Join(errs...)
}
