package mfaccept

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mf/lib/cli"
	"mf/lib/resident"
)

// dnsServer answers on loopback from zone-file records, for run's tests;
// the t/ tests use nsd and rbldnsd.
func dnsServer(t *testing.T, records ...string) string {
	t.Helper()
	var rrs []mdns.RR
	for _, s := range records {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		m.Rcode = mdns.RcodeNameError
		for _, rr := range rrs {
			if strings.EqualFold(rr.Header().Name, q.Question[0].Name) {
				m.Rcode = mdns.RcodeSuccess
				if rr.Header().Rrtype == q.Question[0].Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func runIt(t *testing.T, conf string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "mf.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	var out, errb bytes.Buffer
	env := map[string]string{"MF_CONFIG": cf, "MF_STATE_DIR": filepath.Join(dir, "state")}
	code := Run(context.Background(), strings.NewReader(stdin), &out, &errb, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	addr := dnsServer(t,
		"2.0.0.127.bl.test. A 127.0.0.2", "7.2.0.192.bl.test. A 127.0.0.2",
		"7.2.0.192.in-addr.arpa. PTR mail.example.org.", "mail.example.org. A 192.0.2.7",
		`example.org. TXT "v=spf1 ip4:192.0.2.7 -all"`)
	conf := "accept.resolver " + addr + "\naccept.dnsbl bl.test\naccept.check fcrdns\naccept.check spf-fail\n"
	args := []string{"check", "--phase", "rcpt", "--from", "bob@example.org", "--rcpt", "a@example.test", "--helo", "mail.example.org"}
	code, out, _ := runIt(t, conf, "", append(args, "--client", "192.0.2.7")...)
	if code != 100 || !strings.Contains(out, "Mf-Trace: mf-accept reject check=dnsbl:bl.test hits=dnsbl:bl.test spf=pass") {
		t.Errorf("listed: %d\n%s", code, out)
	}
	code, out, errs := runIt(t, conf, "", append(args, "--client", "192.0.2.8")...)
	if code != 100 || !strings.Contains(out, "check=spf-fail") || strings.Contains(out, "fcrdns") || !strings.Contains(errs, "spf=fail") {
		t.Errorf("no PTR (no rdns-missing check), SPF fail: %d\n%s%s", code, out, errs)
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []string{"accept.check helo-syntax\naccept.check helo-syntax\n", "accept.dnsbl bl.test codes=x\n", "accept.greylist-window 1s\n"} {
		code, out, errs := runIt(t, c, "", "greylist", "show")
		if code != 75 || out != "" || !strings.Contains(errs, "mf.conf:") {
			t.Errorf("%q: %d %q %q", c, code, out, errs)
		}
	}
	if code, out, _ := runIt(t, "", "", "greylist", "show"); code != 0 || out != "no greylist entries\n" {
		t.Errorf("empty show: %d %q", code, out)
	}
	if code, _, errs := runIt(t, "", "", "greylist", "release", "not a tuple"); code != 75 || !strings.Contains(errs, "tuple") {
		t.Errorf("release: %d %q", code, errs)
	}
}

func TestEverySubcommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without a Run method: %v", m)
	}
}

// TestResolverKept: inside mf-bridge the nameservers of resolv.conf are
// read once for each version of the file: an edit is seen by the next
// run.
func TestResolverKept(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(conf, []byte("nameserver 192.0.2.53\n"), 0o644)
	time.Sleep(resident.Settle) // until then, the file just written is read each time
	set := resident.New()
	defer set.Close()
	ctx := resident.With(context.Background(), set)
	c := &root{ResolvConf: conf, DNSTimeout: time.Second}
	a, err := resolver(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := resolver(ctx, c); b != a {
		t.Error("the client of an unchanged resolv.conf was made again")
	}
	os.WriteFile(conf, []byte("nameserver 198.51.100.53\n"), 0o644)
	b, err := resolver(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Servers) != 1 || b.Servers[0] != "198.51.100.53:53" {
		t.Errorf("after the edit: servers %v, want 198.51.100.53:53", b.Servers)
	}
	os.Remove(conf)
	if _, err := resolver(ctx, c); err == nil || !strings.Contains(err.Error(), conf) {
		t.Errorf("resolv.conf gone: %v, want an error naming it", err)
	}
}
