package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// BenchmarkQmailQueueInProcess is the shim's own work per message, no
// stage, process start aside, with /bin/true as qmail-queue: what the
// shell benchmark (t/2590-bench-qmail) adds to the real qmail-queue,
// less Go's start-up.
func BenchmarkQmailQueueInProcess(b *testing.B) {
	conf := writeConf(&testing.T{}, "bridge.qmail-queue /bin/true")
	defer os.Remove(conf)
	lookup := func(k string) (string, bool) {
		switch k {
		case "MF_CONFIG":
			return conf, true
		case "TCPREMOTEIP":
			return "192.0.2.1", true
		}
		return "", false
	}
	for b.Loop() {
		envelopeFile = func() io.Reader { return strings.NewReader(qqEnv) }
		if code := run(context.Background(), strings.NewReader(qqMsg), io.Discard, io.Discard, []string{"qmail-queue"}, lookup); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
