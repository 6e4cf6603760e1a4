package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchLines is the size of the generated logs.
const benchLines = 500_000

// genPostfix writes a realistic Postfix log of about n lines, every
// queue id new and no line repeated: a quarter of the sessions refused
// at RCPT (NOQUEUE), the others one message of 1-3 recipients, 85% sent,
// 10% deferred, 5% bounced.
func genPostfix(b *testing.B, path string, n int) int {
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	t := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	lines := 0
	line := func(format string, args ...any) {
		fmt.Fprintf(w, "%s mx postfix/"+format+"\n", append([]any{t.Format(time.Stamp)}, args...)...)
		lines++
	}
	for i := 0; lines < n; i++ {
		t = t.Add(time.Duration(50+i%900) * time.Millisecond)
		ip := fmt.Sprintf("198.51.%d.%d", i/250%250, i%250+1)
		pid := 1000 + i%30000
		line("smtpd[%d]: connect from c%d.example.net[%s]", pid, i, ip)
		if i%4 == 0 {
			line("smtpd[%d]: NOQUEUE: reject: RCPT from c%d.example.net[%s]: 554 5.7.1 <u%d@example.org>: Relay access denied; from=<s%d@example.net> to=<u%d@example.org> proto=ESMTP helo=<c%d.example.net>", pid, i, ip, i, i, i, i)
			line("smtpd[%d]: disconnect from c%d.example.net[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", pid, i, ip)
			continue
		}
		q := fmt.Sprintf("4Q%09X", i)
		line("smtpd[%d]: %s: client=c%d.example.net[%s]", pid, q, i, ip)
		line("cleanup[%d]: %s: message-id=<%d@example.net>", pid+1, q, i)
		k := 1 + i%3
		line("qmgr[99]: %s: from=<s%d@example.net>, size=%d, nrcpt=%d (queue active)", q, i, 1000+i%50000, k)
		line("smtpd[%d]: disconnect from c%d.example.net[%s] ehlo=1 mail=1 rcpt=%d data=1 quit=1 commands=5", pid, i, ip, k)
		done := true
		for r := range k {
			to := fmt.Sprintf("r%d.%d@d%d.example.com", i, r, i%500)
			switch x := (i*7 + r*13) % 20; {
			case x < 17:
				line("smtp[%d]: %s: to=<%s>, relay=mx.d%d.example.com[203.0.113.%d]:25, delay=1.%d, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X%d)", pid+2, q, to, i%500, i%250, i%10, i)
			case x < 19:
				line("smtp[%d]: %s: to=<%s>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.d%d.example.com[203.0.113.%d]:25: Connection timed out)", pid+2, q, to, i%500, i%250)
				done = false
			default:
				line("smtp[%d]: %s: to=<%s>, relay=mx.d%d.example.com[203.0.113.%d]:25, delay=2, delays=0.1/0/1/1, dsn=5.1.1, status=bounced (host mx.d%d.example.com[203.0.113.%d] said: 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))", pid+2, q, to, i%500, i%250, i%500, i%250, to)
			}
		}
		if done {
			line("qmgr[99]: %s: removed", q)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	out.Close()
	return lines
}

// genSendmail writes a sendmail log of about n lines whose messages stay
// open: every message deferred, again and again, never delivered; sendmail
// logs no removal, so mf-stat follows each until its bound lets it go.
func genSendmail(b *testing.B, path string, n int) (lines, messages int) {
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	t := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := 0; lines < n; i++ {
		t = t.Add(100 * time.Millisecond)
		q := fmt.Sprintf("6BM%06X%05d", i, i%100000)
		fmt.Fprintf(w, "%s mx sm-mta[%d]: %s: from=<sender%d@example.net>, size=%d, class=0, nrcpts=1, msgid=<%d@example.net>, proto=ESMTP, daemon=MTA, relay=c%d.example.net [198.51.100.%d]\n",
			t.Format(time.Stamp), 1000+i%30000, q, i, 2000+i%9000, i, i, i%250)
		fmt.Fprintf(w, "%s mx sm-mta[%d]: %s: to=<rcpt%d@d%d.example.com>, delay=00:00:30, xdelay=00:00:30, mailer=esmtp, pri=%d, relay=d%d.example.com., dsn=4.0.0, stat=Deferred: Connection timed out with d%d.example.com.\n",
			t.Format(time.Stamp), 1000+i%30000, q, i, i%700, 120000+i, i%700, i%700)
		lines += 2
		messages++
		if i%3 == 0 { // a retry of an older message, still open
			o := i / 2
			q := fmt.Sprintf("6BM%06X%05d", o, o%100000)
			fmt.Fprintf(w, "%s mx sm-mta[%d]: %s: to=<rcpt%d@d%d.example.com>, delay=01:00:00, xdelay=00:00:30, mailer=esmtp, pri=%d, relay=d%d.example.com., dsn=4.0.0, stat=Deferred: Connection timed out with d%d.example.com.\n",
				t.Format(time.Stamp), 2000+i%30000, q, o, o%700, 220000+o, o%700, o%700)
			lines++
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	out.Close()
	return lines, messages
}

// measure runs a command over the log, returning its time and peak RSS.
// The RSS wait4 reports for a child of this process includes this
// process's own (Go starts children with vfork), so it is taken from GNU
// time, a fork away, where there is one.
func measure(b *testing.B, name string, args ...string) (time.Duration, time.Duration, int64) {
	gnuTime := false
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		args = append([]string{"-f", "%M", name}, args...)
		name, gnuTime = "/usr/bin/time", true
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", name, err, stderr.Bytes())
	}
	d := time.Since(start)
	// CPU time, the child's and its children's: on a machine shared
	// with other work it varies less than the time on the clock.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	if gnuTime {
		f := bytes.Fields(stderr.Bytes())
		if len(f) > 0 {
			if kb, err := strconv.ParseInt(string(f[len(f)-1]), 10, 64); err == nil {
				rss = kb * 1024
			}
		}
	}
	return d, cpu, rss
}

// BenchmarkStat puts mf-stat (the built binary, bin/mf-stat) beside
// pflogsumm, wc -l and zcat | wc -l on the same generated Postfix log,
// plain and gzipped: lines per second, peak RSS, and the ratios (goals:
// 30x pflogsumm on the plain file, faster than zcat | wc -l on the
// gzipped one, peak RSS within 64 MiB). Then a sendmail log whose
// messages stay open, for peak RSS at the default bounds and the bytes
// each followed message costs.
func BenchmarkStat(b *testing.B) {
	if os.Getenv("MF_STAT_BENCH") == "" {
		b.Skip("set MF_STAT_BENCH=1 (make bench does): it builds a 500,000-line log")
	}
	bin, _ := filepath.Abs("../../bin/mf-stat")
	if _, err := os.Stat(bin); err != nil {
		b.Skip("bin/mf-stat missing: make all")
	}
	dir := b.TempDir()
	log := filepath.Join(dir, "maillog")
	lines := genPostfix(b, log, benchLines)
	gz := log + ".gz"
	if err := exec.Command("sh", "-c", "gzip -c "+log+" >"+gz).Run(); err != nil {
		b.Fatal(err)
	}
	// run reports lines per second of the clock and of CPU time.
	run := func(b *testing.B, lines int, name string, args ...string) (float64, float64) {
		var total, cpu time.Duration
		var rss int64
		for b.Loop() {
			d, c, r := measure(b, name, args...)
			total += d
			cpu += c
			rss = max(rss, r)
		}
		rate := float64(lines) * float64(b.N) / total.Seconds()
		crate := float64(lines) * float64(b.N) / cpu.Seconds()
		b.ReportMetric(rate, "lines/s")
		b.ReportMetric(crate, "lines/cpu-s")
		b.ReportMetric(float64(rss)/(1<<20), "MiB-peak-RSS")
		b.ReportMetric(0, "ns/op")
		return rate, crate
	}
	stat := []string{"--config", "/dev/null", "--now", "2026-11-23T00:00:00Z"}
	var wc, zwc, pfl, pflCPU float64
	b.Run("wc-l", func(b *testing.B) { wc, _ = run(b, lines, "wc", "-l", log) })
	b.Run("zcat-wc-l", func(b *testing.B) { zwc, _ = run(b, lines, "sh", "-c", "zcat "+gz+" | wc -l") })
	if _, err := exec.LookPath("pflogsumm"); err == nil {
		b.Run("pflogsumm", func(b *testing.B) { pfl, pflCPU = run(b, lines, "pflogsumm", log) })
	} else {
		b.Log("pflogsumm not installed: no ratio")
	}
	b.Run("mf-stat", func(b *testing.B) {
		rate, crate := run(b, lines, bin, append(stat, log)...)
		if pfl > 0 {
			b.ReportMetric(rate/pfl, "x-pflogsumm")
			b.ReportMetric(crate/pflCPU, "x-pflogsumm-cpu")
		}
		b.ReportMetric(rate/wc, "x-wc-l")
	})
	b.Run("mf-stat-gz", func(b *testing.B) {
		rate, _ := run(b, lines, bin, append(stat, gz)...)
		b.ReportMetric(rate/zwc, "x-zcat-wc-l")
	})
	slog := filepath.Join(dir, "sendmail.log")
	slines, msgs := genSendmail(b, slog, benchLines)
	b.Run("mf-stat-sendmail-open", func(b *testing.B) {
		run(b, slines, bin, append(stat, slog)...)
		// More than the default --max-messages: the bound, not the log,
		// sets how many are followed at once (TestMessageCost measures
		// the bytes each costs).
		b.ReportMetric(float64(msgs), "messages")
	})
}
