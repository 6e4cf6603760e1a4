package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"mf/lib/decision"
)

// metrics are what a running bridge counts, served for Prometheus on
// bridge.metrics and read for a person by "mf-bridge status". They are
// taken from the decision records, so they count what the records say.
// A bridge with no bridge.metrics has none: a nil *metrics, whose reload,
// session and listen do nothing.
type metrics struct {
	reg       *prometheus.Registry
	messages  *prometheus.CounterVec
	bytes     prometheus.Counter
	runs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	failures  *prometheus.CounterVec
	sessions  prometheus.Gauge
	reloads   *prometheus.CounterVec
	lastLoad  prometheus.Gauge
	spoolDir  func() string
	inFlight  func() float64
	stageSecs []float64
}

func newMetrics(srv *server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mf_decisions_total",
		Help: "Decisions, by the phase they were taken at and their outcome (one per decision record)."}, []string{"phase", "outcome"})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "mf_message_bytes_total", Help: "Bytes of the messages that reached the end of data."})
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mf_stage_runs_total",
		Help: "Stage runs, by stage and outcome (its verdict, or on-error's for a failed run)."}, []string{"stage", "outcome"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mf_stage_duration_seconds", Help: "How long each stage run took.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"stage"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mf_stage_failures_total",
		Help: "Stage runs that failed, by stage and cause (timeout, killed, exit, start, output, other)."}, []string{"stage", "cause"})
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mf_sessions_in_flight", Help: "MTA connections being served."})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mf_reloads_total", Help: "SIGHUP reloads, by result (ok, refused)."}, []string{"result"})
	m.lastLoad = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mf_config_load_time_seconds", Help: "When the configuration in use was loaded (Unix time)."})
	m.lastLoad.SetToCurrentTime()
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mf_messages_in_flight", Help: "Transactions under way."},
		func() float64 { return float64(srv.inFlight.Load()) })
	spool := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mf_spool_free_bytes",
		Help: "Bytes free on the spool directory's file system (spooled files are unlinked at once, so this is where they show)."},
		func() float64 { return spoolFree(srv) })
	for _, r := range []string{"ok", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	m.reg.MustRegister(m.messages, m.bytes, m.runs, m.duration, m.failures, m.sessions, m.reloads, m.lastLoad, inFlight, spool,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

func spoolFree(srv *server) float64 {
	dir := os.TempDir()
	if g := srv.gen.Load(); g != nil && g.cfg.SpoolDir != "" {
		dir = g.cfg.SpoolDir
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0
	}
	return float64(st.Bavail) * float64(st.Bsize)
}

// observe counts one decision record.
func (m *metrics) observe(r *decision.Record) {
	m.messages.WithLabelValues(r.Phase, r.Action).Inc()
	if r.Phase == "data" {
		m.bytes.Add(float64(r.Size))
	}
	for _, s := range r.Stages {
		m.runs.WithLabelValues(s.Name, s.Action).Inc()
		m.duration.WithLabelValues(s.Name).Observe(s.MS / 1000)
		if s.Error != "" {
			m.failures.WithLabelValues(s.Name, cause(s.Error)).Inc()
		}
	}
}

// cause names the kind of a stage's failure, from lib/chain's error.
func cause(err string) string {
	for _, c := range []struct{ prefix, cause string }{
		{"timeout", "timeout"}, {"killed", "killed"}, {"exit ", "exit"}, {"start", "start"}, {"output", "output"}, {"stdin", "output"},
	} {
		if strings.HasPrefix(err, c.prefix) {
			return c.cause
		}
	}
	return "other"
}

func (m *metrics) reload(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.lastLoad.SetToCurrentTime()
	} else {
		m.reloads.WithLabelValues("refused").Inc()
	}
}

// session counts an MTA connection opened (+1) or closed (-1).
func (m *metrics) session(d float64) {
	if m != nil {
		m.sessions.Add(d)
	}
}

// listen serves /metrics on addr (HOST:PORT) until ln is closed.
func (m *metrics) listen(addr string) (net.Listener, error) {
	if m == nil || addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "mf-bridge: metrics: %v\n", err)
		}
	}()
	return ln, nil
}
