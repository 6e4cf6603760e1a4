package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mf/lib/decision"
	"mf/lib/logger"
)

func TestCause(t *testing.T) {
	for err, want := range map[string]string{
		"timeout after 10s": "timeout", "killed by signal 9 (killed)": "killed", "exit 75": "exit",
		"start: fork/exec spamcc: no such file": "start", "output: no message on stdout (output=message)": "output",
		"stdin: broken": "output", "what": "other",
	} {
		if got := cause(err); got != want {
			t.Errorf("cause(%q) = %s, want %s", err, got, want)
		}
	}
}

// What the metrics count, as mf-bridge status shows it.
func TestStatus(t *testing.T) {
	srv := &server{log: logger.New("mf-bridge", io.Discard)}
	m := newMetrics(srv)
	m.observe(&decision.Record{Phase: "data", Action: "accept", Size: 100, Stages: []decision.Stage{
		{Name: "lists", Phase: "rcpt", Action: "continue", MS: 2},
		{Name: "scan", Phase: "data", Action: "continue", MS: 10000, Error: "timeout after 10s"},
	}})
	m.observe(&decision.Record{Phase: "rcpt", Action: "reject", Stages: []decision.Stage{{Name: "lists", Phase: "rcpt", Action: "reject", MS: 4}}})
	m.reload(true)
	m.reload(false)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, f := range fams {
		expfmt.MetricFamilyToText(&text, f)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(&text)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeStatus(&out, "127.0.0.1:9357", parsed, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"reloads: 1 ok, 1 refused",
		"  data                 accept              1\n",
		"  rcpt                 reject              1\n",
		"  lists                reject              1\n",
		"  scan                 timeout             1\n",
		"  lists                       2        3.0ms\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkDecision: what the metrics add to a decision, against making
// its JSON record alone.
func BenchmarkDecision(b *testing.B) {
	rec := &decision.Record{Phase: "data", Action: "accept", Size: 5000, ClientAddr: "192.0.2.7", Stages: []decision.Stage{
		{Name: "lists", Phase: "rcpt", Action: "continue", MS: 2, Trace: "mf-lists continue 0.3ms"},
		{Name: "quota", Phase: "data", Action: "continue", MS: 3, Trace: "mf-quota continue 1.1ms"},
	}}
	var base float64
	b.Run("baseline-record-json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(rec)
		}
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("record-and-metrics", func(b *testing.B) {
		m := newMetrics(&server{})
		for b.Loop() {
			json.Marshal(rec)
			m.observe(rec)
		}
		if base > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
		}
	})
}
