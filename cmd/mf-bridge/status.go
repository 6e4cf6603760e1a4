package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mf/lib/cli"
)

// statusCmd is "mf-bridge status": the metrics of a running bridge, for
// a person.
type statusCmd struct {
	Metrics string `placeholder:"HOST:PORT" help:"Where the running mf-bridge serves its metrics (bridge.metrics)."`
}

func (cmd *statusCmd) Run(env *cli.Env, c *root) error {
	if cmd.Metrics == "" {
		return fmt.Errorf("no metrics address: set bridge.metrics in %s (and restart mf-bridge), or give --metrics", c.Config)
	}
	ctx, cancel := context.WithTimeout(env.Ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+cmd.Metrics+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("status: is mf-bridge milter running with bridge.metrics %s? %w", cmd.Metrics, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %s: %s", req.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("status: %s: %w", req.URL, err)
	}
	return writeStatus(env.Stdout, cmd.Metrics, fams, time.Now())
}

// writeStatus writes the metric families a person asks about.
func writeStatus(w io.Writer, addr string, fams map[string]*dto.MetricFamily, now time.Time) error {
	var b strings.Builder
	up := ""
	if t := value(fams["process_start_time_seconds"], nil); t > 0 {
		up = ", up " + now.Sub(time.Unix(int64(t), 0)).Round(time.Second).String()
	}
	fmt.Fprintf(&b, "mf-bridge at %s%s: %.0f MTA connection(s), %.0f message(s) under way\n", addr, up,
		value(fams["mf_sessions_in_flight"], nil), value(fams["mf_messages_in_flight"], nil))
	if t := value(fams["mf_config_load_time_seconds"], nil); t > 0 {
		fmt.Fprintf(&b, "configuration loaded %s ago; reloads: %.0f ok, %.0f refused\n", now.Sub(time.Unix(int64(t), 0)).Round(time.Second),
			value(fams["mf_reloads_total"], map[string]string{"result": "ok"}), value(fams["mf_reloads_total"], map[string]string{"result": "refused"}))
	}
	b.WriteString("\ndecisions (phase outcome count):\n")
	table(&b, fams["mf_decisions_total"], "phase", "outcome")
	b.WriteString("\nstage runs (stage outcome count):\n")
	table(&b, fams["mf_stage_runs_total"], "stage", "outcome")
	if f := fams["mf_stage_duration_seconds"]; f != nil {
		b.WriteString("\nstage time (stage runs mean):\n")
		for _, m := range sorted(f, "stage") {
			h := m.GetHistogram()
			if n := h.GetSampleCount(); n > 0 {
				fmt.Fprintf(&b, "  %-20s %8d %10.1fms\n", label(m, "stage"), n, h.GetSampleSum()/float64(n)*1000)
			}
		}
	}
	b.WriteString("\nstage failures (stage cause count):\n")
	table(&b, fams["mf_stage_failures_total"], "stage", "cause")
	if v := value(fams["mf_spool_free_bytes"], nil); v > 0 {
		fmt.Fprintf(&b, "\nspool: %.1f GiB free\n", v/(1<<30))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table writes one line per labelled counter, or "  none".
func table(b *strings.Builder, f *dto.MetricFamily, l1, l2 string) {
	n := 0
	for _, m := range sorted(f, l1, l2) {
		if v := m.GetCounter().GetValue(); v > 0 {
			fmt.Fprintf(b, "  %-20s %-12s %8.0f\n", label(m, l1), label(m, l2), v)
			n++
		}
	}
	if n == 0 {
		b.WriteString("  none\n")
	}
}

func sorted(f *dto.MetricFamily, by ...string) []*dto.Metric {
	if f == nil {
		return nil
	}
	ms := append([]*dto.Metric(nil), f.Metric...)
	sort.SliceStable(ms, func(i, j int) bool {
		for _, l := range by {
			if a, b := label(ms[i], l), label(ms[j], l); a != b {
				return a < b
			}
		}
		return false
	})
	return ms
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// value is the value of the metric of f with the labels want (nil: the
// first), 0 when there is none.
func value(f *dto.MetricFamily, want map[string]string) float64 {
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			if label(m, k) != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return 0
}
