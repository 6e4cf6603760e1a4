package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Client asks recursive servers over the wire: UDP, TCP when the answer
// is truncated, each server in turn until one answers.
type Client struct {
	Servers []string      // host:port
	Timeout time.Duration // for one exchange with one server
}

// NewClient makes a client for servers ("127.0.0.1:5353", "::1", a bare
// address meaning port 53), or, when servers is empty, the nameservers of
// resolvconf (/etc/resolv.conf).
func NewClient(servers []string, resolvconf string, timeout time.Duration) (*Client, error) {
	c := &Client{Timeout: timeout}
	if len(servers) == 0 {
		cf, err := mdns.ClientConfigFromFile(resolvconf)
		if err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		for _, s := range cf.Servers {
			servers = append(servers, net.JoinHostPort(s, cf.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("resolver: no nameserver in %s", resolvconf)
		}
	}
	for _, s := range servers {
		addr, err := ServerAddr(s)
		if err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, addr)
	}
	return c, nil
}

// ServerAddr reads a server given as an address with or without a port.
func ServerAddr(s string) (string, error) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		if net.ParseIP(h) == nil {
			return "", fmt.Errorf("resolver %q: not an IP address and port", s)
		}
		return net.JoinHostPort(h, p), nil
	}
	if net.ParseIP(strings.Trim(s, "[]")) == nil {
		return "", fmt.Errorf("resolver %q: not an IP address or address:port", s)
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53"), nil
}

// Query sends one question with recursion desired and EDNS0 (1232 bytes).
func (c *Client) Query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	fq := mdns.Fqdn(name)
	if _, ok := mdns.IsDomainName(fq); !ok || len(fq) > 254 {
		return nil, &net.DNSError{Err: "invalid domain name", Name: name, IsNotFound: true}
	}
	m := new(mdns.Msg)
	m.SetQuestion(fq, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	var lastErr error
	for _, srv := range c.Servers {
		r, err := c.exchange(ctx, m, srv)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch r.Rcode {
		case mdns.RcodeSuccess:
			if len(r.Answer) == 0 {
				return nil, NotFound(name)
			}
			return r.Answer, nil
		case mdns.RcodeNameError:
			return nil, NotFound(name)
		default:
			lastErr = &net.DNSError{Err: "server answered " + mdns.RcodeToString[r.Rcode], Name: name, Server: srv, IsTemporary: true}
		}
	}
	return nil, lastErr
}

func (c *Client) exchange(ctx context.Context, m *mdns.Msg, srv string) (*mdns.Msg, error) {
	t := c.Timeout
	if t <= 0 {
		t = 5 * time.Second
	}
	cl := &mdns.Client{Net: "udp", Timeout: t, UDPSize: 1232}
	r, _, err := cl.ExchangeContext(ctx, m, srv)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.ExchangeContext(ctx, m, srv)
	}
	if err != nil {
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		return nil, &net.DNSError{Err: err.Error(), Name: strings.TrimSuffix(m.Question[0].Name, "."), Server: srv, IsTimeout: timeout, IsTemporary: true}
	}
	if r.Id != m.Id {
		return nil, &net.DNSError{Err: "answer to another question", Server: srv, IsTemporary: true}
	}
	return r, nil
}
