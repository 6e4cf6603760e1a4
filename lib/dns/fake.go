package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Fake is a Resolver for unit tests: records in zone-file syntax, names
// that time out or fail, and a count of the questions asked.
type Fake struct {
	mu      sync.Mutex
	rrs     []mdns.RR
	Slow    map[string]bool // lower-case FQDNs that time out (wait for ctx)
	Fail    map[string]bool // lower-case FQDNs that get SERVFAIL
	Queries int
}

// NewFake reads records such as "7.2.0.192.zen.test. A 127.0.0.2"; a
// record without a TTL gets 300. It panics on a bad record: its input is
// the test's own.
func NewFake(records ...string) *Fake {
	f := &Fake{Slow: map[string]bool{}, Fail: map[string]bool{}}
	for _, s := range records {
		f.Add(s)
	}
	return f
}

// Add adds one record.
func (f *Fake) Add(s string) {
	rr, err := mdns.NewRR(s)
	if err != nil || rr == nil {
		panic(fmt.Sprintf("fake dns record %q: %v", s, err))
	}
	f.mu.Lock()
	f.rrs = append(f.rrs, rr)
	f.mu.Unlock()
}

func (f *Fake) Query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	fq := strings.ToLower(mdns.Fqdn(name))
	f.mu.Lock()
	f.Queries++
	slow, fail := f.Slow[fq], f.Fail[fq]
	var out []mdns.RR
	exists := false
	for _, rr := range f.rrs {
		if strings.ToLower(rr.Header().Name) != fq {
			continue
		}
		exists = true
		if rr.Header().Rrtype == qtype || rr.Header().Rrtype == mdns.TypeCNAME {
			out = append(out, rr)
		}
	}
	f.mu.Unlock()
	switch {
	case slow:
		<-ctx.Done()
		return nil, &net.DNSError{Err: "timeout", Name: name, IsTimeout: true, IsTemporary: true}
	case fail:
		return nil, &net.DNSError{Err: "server answered SERVFAIL", Name: name, IsTemporary: true}
	case !exists || len(out) == 0:
		return nil, NotFound(name)
	}
	return out, nil
}
