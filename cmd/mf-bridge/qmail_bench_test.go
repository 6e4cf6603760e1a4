package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkQmailQueueInProcess is the shim's own work per message, no
// stage, process start aside, with /bin/true as qmail-queue: what the
// shell benchmark (t/2590-bench-qmail) adds to the real qmail-queue,
// less Go's start-up.
func BenchmarkQmailQueueInProcess(b *testing.B) {
	conf := writeConf(b, "bridge.qmail-queue /bin/true")
	lookup := func(k string) (string, bool) {
		switch k {
		case "MF_CONFIG":
			return conf, true
		case "TCPREMOTEIP":
			return "192.0.2.1", true
		}
		return "", false
	}
	useEnvelope(b, qqEnv)
	for b.Loop() {
		if code := run(context.Background(), strings.NewReader(qqMsg), io.Discard, io.Discard, []string{"qmail-queue"}, lookup); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkQmailServer is the resident server's work per message, no
// stage, over its unix socket, with a client in Go, beside the same
// exchange with a server that reads the request and answers "exit 0" at
// once (x-bare): what mf-qmail-queue-client and qmail-server add to the
// real qmail-queue in t/2590-bench-qmail, less the client's exec and
// the second one of qmail-queue.
func BenchmarkQmailServer(b *testing.B) {
	sock := qmailServer(b, writeConf(b, "bridge.qmail-queue /var/qmail/bin/qmail-queue"))
	bare := bareQmailServer(b)
	msg := qqMsg + strings.Repeat("A line of a message of about four kilobytes, to be queued and nothing else.\n", 50)
	var server, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		if a := askQmailServer(b, bare, msg, qqEnv, true, tcpEnv); a.line != "exit 0" {
			b.Fatalf("bare answer %q", a.line)
		}
		t1 := time.Now()
		if a := askQmailServer(b, sock, msg, qqEnv, true, tcpEnv); a.line != "queue /var/qmail/bin/qmail-queue" {
			b.Fatalf("answer %q", a.line)
		}
		server, base = server+time.Since(t1), base+t1.Sub(t0)
	}
	b.ReportMetric(float64(server.Microseconds())/float64(b.N), "us/message")
	b.ReportMetric(float64(server)/float64(base), "x-bare")
}

// bareQmailServer reads each request as the qmail server does and
// answers "exit 0", until the benchmark ends.
func bareQmailServer(b *testing.B) string {
	sock := filepath.Join(b.TempDir(), "bare.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := readQmailRequest(c.(*net.UnixConn)); err == nil {
				req.close()
			}
			io.WriteString(c, "exit 0\n")
			c.Close()
		}
	}()
	return sock
}
