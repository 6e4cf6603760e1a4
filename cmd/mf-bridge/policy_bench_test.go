package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/logger"
	"mf/lib/policy"
)

const benchRequest = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.1\nclient_name=unknown\nhelo_name=client.example.org\nsender=a@example.org\nrecipient=b@example.test\nsize=1000\n\n"

// policyRate sends n requests over one connection to serve and returns
// requests per second.
func policyRate(b *testing.B, n int, serve func(net.Conn)) float64 {
	client, server := net.Pipe()
	go serve(server)
	defer client.Close()
	br := bufio.NewReader(client)
	start := time.Now()
	for range n {
		if _, err := io.WriteString(client, benchRequest); err != nil {
			b.Fatal(err)
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if line == "\n" {
				break
			}
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkPolicy is requests/s over one connection: the protocol alone
// (read, answer DUNNO) as the baseline, the server with no stage, and
// with an mf-lists stage at RCPT (one program started per request).
func BenchmarkPolicy(b *testing.B) {
	n := b.N
	codec := policyRate(b, n, func(c net.Conn) {
		defer c.Close()
		rd, w := policy.NewReader(c), bufio.NewWriter(c)
		for {
			if _, err := rd.Read(); err != nil {
				return
			}
			w.WriteString(policy.Answer{Action: policy.Dunno}.Line())
			w.Flush()
		}
	})
	srv := func(stages ...string) *server {
		ch := &chain.Chain{Runner: &chain.Runner{Env: []string{"PATH=" + os.Getenv("PATH")}}}
		for _, l := range stages {
			st, err := chain.Parse(l)
			if err != nil {
				b.Fatal(err)
			}
			ch.Stages = append(ch.Stages, st)
		}
		s := &server{log: logger.New("mf-bridge", io.Discard)}
		s.gen.Store(&generation{cfg: &bridge.Config{Chain: ch, Log: s.log}})
		return s
	}
	none := srv()
	bare := policyRate(b, n, func(c net.Conn) { none.policyConn(context.Background(), c, time.Minute) })
	lists := filepath.Join(b.TempDir(), "10-block.list")
	os.WriteFile(lists, []byte("match: sender\naction: block\n@spam.example\n"), 0o644)
	bin, _ := filepath.Abs("../../bin/mf-lists")
	withLists := srv(fmt.Sprintf("lists rcpt %s --state-dir %s --list %s check", bin, b.TempDir(), lists))
	m := n
	if m > 100 {
		m = 100 // a program per request: fewer suffice
	}
	staged := 0.0
	if _, err := os.Stat(bin); err == nil {
		staged = policyRate(b, m, func(c net.Conn) { withLists.policyConn(context.Background(), c, time.Minute) })
	}
	b.ReportMetric(codec, "codec-req/s")
	b.ReportMetric(bare, "nostage-req/s")
	b.ReportMetric(codec/bare, "nostage-slowdown-x")
	if staged > 0 {
		b.ReportMetric(staged, "mflists-req/s")
	}
}
