package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mf/lib/dns"
)

// BenchmarkProcess runs the built mf-accept check at RCPT per recipient,
// as mf-bridge runs a stage, with the DNS answered by a real nsd (PTR, A,
// SPF) and rbldnsd (two DNSBLs, an RHSBL, a DNSWL) on loopback: HELO,
// PTR, FCrDNS, generic name, four lists and SPF per run; the lists'
// health probes are believed from state-dir/dnsbl-health after the first
// run, as on a server.
// Beside it, the built mf-lists check at RCPT with the example lists is
// the baseline. Reported: ns per check of each and the ratio.
func BenchmarkProcess(b *testing.B) {
	for _, p := range []string{"nsd", "rbldnsd"} {
		if _, err := exec.LookPath(p); err != nil {
			if _, err := os.Stat("/usr/sbin/" + p); err != nil {
				b.Skipf("%s missing: no DNS to measure against", p)
			}
		}
	}
	if os.Getuid() != 0 {
		b.Skip("rbldnsd is started as nobody: needs root")
	}
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	accept, lists := filepath.Join(dir, "mf-accept"), filepath.Join(dir, "mf-lists")
	for bin, pkg := range map[string]string{accept: ".", lists: "../mf-lists"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	nsdPort, rblPort := startDNS(b, dir)
	conf := filepath.Join(dir, "mf.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`accept.resolver 127.0.0.1:%d
accept.dns-timeout 2s
accept.dnsbl bl.test server=127.0.0.1:%[2]d
accept.dnsbl bl2.test server=127.0.0.1:%[2]d
accept.rhsbl rhs.test server=127.0.0.1:%[2]d
accept.dnswl wl.test server=127.0.0.1:%[2]d
accept.check helo-syntax
accept.check helo-bare-ip
accept.check helo-own
accept.check helo-literal
accept.check rdns-missing
accept.check fcrdns score=2
accept.check rdns-generic score=1
accept.check spf-fail
accept.check spf-softfail action=tag
accept.own-name mx.example.test
`, nsdPort, rblPort)), 0o644)
	state := filepath.Join(dir, "state")
	env := []string{"--phase", "rcpt", "--from", "bob@good.test", "--rcpt", "alice@example.test", "--client", "203.0.113.10", "--helo", "mail.good.test"}
	runOnce := func(want string, bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		cmd.Env = append(os.Environ(), "MF_INPUT=message")
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v\n%s", bin, err, stderr.String())
		}
		d := time.Since(t0)
		if !strings.Contains(out.String(), want) {
			b.Fatalf("%s: no %q in\n%s%s", bin, want, out.String(), stderr.String())
		}
		return d
	}
	largs := append([]string{"--config", "/dev/null", "--dir", "../../etc/lists", "--state-dir", state, "check"}, env...)
	aargs := append([]string{"--config", conf, "--state-dir", state, "check"}, env...)
	runOnce("Mf-Trace: mf-lists", lists, largs...) // compiles the lists into the cache
	runOnce("Received-SPF: pass", accept, aargs...)
	var a, l time.Duration
	for b.Loop() {
		a += runOnce("Mf-Trace: mf-accept continue", accept, aargs...)
		l += runOnce("Mf-Trace: mf-lists", lists, largs...)
	}
	n := float64(b.N)
	b.ReportMetric(float64(a.Nanoseconds())/n, "ns/accept")
	b.ReportMetric(float64(l.Nanoseconds())/n, "ns/lists")
	b.ReportMetric(float64(a)/float64(l), "x-lists")
}

func freePort(b *testing.B) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startDNS starts nsd for the zones "test" and 113.0.203.in-addr.arpa and
// rbldnsd for the lists, and waits until both answer.
func startDNS(b *testing.B, dir string) (int, int) {
	nsdPort, rblPort := freePort(b), freePort(b)
	for rblPort == nsdPort {
		rblPort = freePort(b)
	}
	soa := "$TTL 60\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n"
	os.WriteFile(filepath.Join(dir, "test.zone"), []byte("$ORIGIN test.\n"+soa+`ns A 127.0.0.1
mail.good A 203.0.113.10
good TXT "v=spf1 ip4:203.0.113.0/24 -all"
`), 0o644)
	os.WriteFile(filepath.Join(dir, "rev.zone"), []byte("$ORIGIN 113.0.203.in-addr.arpa.\n"+soa+"10 PTR mail.good.test.\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "nsd.conf"), []byte(fmt.Sprintf(`server:
	ip-address: 127.0.0.1@%d
	port: %[1]d
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: %[2]q
	database: ""
	zonelistfile: "%[2]s/zone.list"
	xfrdfile: "%[2]s/xfrd.state"
	xfrdir: %[2]q
	pidfile: "%[2]s/nsd.pid"
	logfile: "%[2]s/nsd.log"
	server-count: 1
remote-control:
	control-enable: no
zone:
	name: test
	zonefile: "%[2]s/test.zone"
zone:
	name: 113.0.203.in-addr.arpa
	zonefile: "%[2]s/rev.zone"
`, nsdPort, dir)), 0o644)
	rbl := filepath.Join(dir, "rbl")
	os.Mkdir(rbl, 0o755)
	os.WriteFile(filepath.Join(rbl, "bl.txt"), []byte("127.0.0.2\n192.0.2.99\n"), 0o644)
	os.WriteFile(filepath.Join(rbl, "rhs.txt"), []byte("test\nspam.test\n"), 0o644)
	start := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Path = lookPath(name)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	start("nsd", "-d", "-c", filepath.Join(dir, "nsd.conf"))
	start("rbldnsd", "-n", "-q", "-u", "nobody", "-w", rbl, "-b", fmt.Sprintf("127.0.0.1/%d", rblPort),
		"bl.test:ip4set:bl.txt", "bl2.test:ip4set:bl.txt", "wl.test:ip4set:bl.txt", "rhs.test:dnset:rhs.txt")
	for _, w := range []struct {
		port int
		name string
	}{{nsdPort, "mail.good.test"}, {rblPort, "2.0.0.127.bl.test"}} {
		c := &dns.Client{Servers: []string{fmt.Sprintf("127.0.0.1:%d", w.port)}, Timeout: 200 * time.Millisecond}
		ok := false
		for range 50 {
			if _, err := c.Query(b.Context(), w.name, dns.TypeA); err == nil {
				ok = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			b.Fatalf("no answer on port %d for %s", w.port, w.name)
		}
	}
	return nsdPort, rblPort
}

func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}
