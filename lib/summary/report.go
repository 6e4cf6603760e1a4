package summary

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Totals are the grand totals. Counts of deliveries, deferrals, bounces
// and refusals are per recipient, as in pflogsumm; received and deferred
// count messages. Each word means one thing in every table and format:
// deferred is messages deferred at least once, deferrals the attempts;
// rejected is refusals for good (5xx), tempfailed refusals for now (4xx);
// recipients and recipient domains are those delivered to.
type Totals struct {
	Received         int64 `json:"received"`
	Delivered        int64 `json:"delivered"`
	Forwarded        int64 `json:"forwarded"`
	Deferred         int64 `json:"deferred"`
	Deferrals        int64 `json:"deferrals"`
	Bounced          int64 `json:"bounced"`
	Rejected         int64 `json:"rejected"`
	Tempfailed       int64 `json:"tempfailed"`
	RejectedPercent  int64 `json:"rejected_percent"`
	RejectWarnings   int64 `json:"reject_warnings"`
	Held             int64 `json:"held"`
	Discarded        int64 `json:"discarded"`
	Filtered         int64 `json:"filtered"`
	BytesReceived    int64 `json:"bytes_received"`
	BytesDelivered   int64 `json:"bytes_delivered"`
	Senders          int   `json:"senders"`
	SendingHosts     int   `json:"sending_hosts"`
	SendingDomains   int   `json:"sending_domains"`
	Recipients       int   `json:"recipients"`
	RecipientDomains int   `json:"recipient_domains"`
	Decisions        int64 `json:"decisions"`
	Problems         int64 `json:"problems"`
	Capped           bool  `json:"capped"` // a table filled up: distinct counts are lower bounds
}

// Table is one section of the report: Columns name the cells of each
// row, numbers first and the key (domain, reason, ...) last.
type Table struct {
	Name    string   `json:"name"`
	Title   string   `json:"title"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Report is everything mf-stat prints, in every format.
type Report struct {
	From   string  `json:"from,omitempty"` // first and last event counted, RFC 3339
	To     string  `json:"to,omitempty"`
	Totals Totals  `json:"totals"`
	Lines  Lines   `json:"lines"`
	Tables []Table `json:"tables"`
}

// TableNames lists the tables of a report, in order.
var TableNames = []string{"totals", "days", "hours", "recipient-domains", "sender-domains", "senders", "senders-by-size",
	"recipients", "recipients-by-size", "hosts", "reject-reasons", "restrictions", "tempfail-reasons", "refused-clients",
	"refused-senders", "deferral-reasons", "bounce-reasons", "held", "discarded", "delays", "verdicts", "verdict-reasons",
	"decisions", "problems"}

// Report builds the report; top bounds the rows of ranked tables (0: all).
// Call Finish first.
func (s *Summary) Report(top int) *Report {
	r := &Report{Totals: s.t, Lines: s.Lines}
	if !s.first.IsZero() {
		r.From = s.first.In(s.o.Loc).Format(time.RFC3339)
		r.To = s.last.In(s.o.Loc).Format(time.RFC3339)
	}
	t := &r.Totals
	if all := t.Delivered + t.Rejected + t.Discarded; all > 0 {
		t.RejectedPercent = t.Rejected * 100 / all
	}
	t.Senders, t.SendingHosts, t.SendingDomains = s.senders.distinct(), s.sendHosts.distinct(), s.sendDom.distinct()
	t.Recipients, t.RecipientDomains = s.rcpts.distinct(), s.rcptDom.distinct()
	for _, x := range []*table{s.senders, s.sendHosts, s.sendDom, s.rcpts, s.rcptDom} {
		t.Capped = t.Capped || x.full
	}

	traffic := []string{"received", "delivered", "deferrals", "bounced", "rejected", "tempfailed"}
	days := Table{Name: "days", Title: "Per-day traffic", Columns: append([]string{"date"}, traffic...), Rows: [][]any{}}
	keys := make([]string, 0, len(s.days))
	for k := range s.days {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := s.days[k]
		days.Rows = append(days.Rows, []any{k, d[0], d[1], d[2], d[3], d[4], d[5]})
	}
	hours := Table{Name: "hours", Title: "Per-hour traffic (" + s.o.Loc.String() + ", all days added up)", Columns: append([]string{"hour"}, traffic...), Rows: [][]any{}}
	for h, d := range s.hours {
		hours.Rows = append(hours.Rows, []any{fmt.Sprintf("%02d-%02d", h, h+1), d[0], d[1], d[2], d[3], d[4], d[5]})
	}
	r.Tables = append(r.Tables, days, hours)

	byN := func(r *row) float64 { return float64(r.n) }
	byBytes := func(r *row) float64 { return float64(r.bytes) }
	dom := Table{Name: "recipient-domains", Title: "Delivery by recipient domain", Columns: []string{"delivered", "bytes", "deferrals", "avg_delay", "max_delay", "domain"}, Rows: [][]any{}}
	for _, k := range s.rcptDom.top(top, byN) {
		avg := 0.0
		if k.delays > 0 {
			avg = k.sum / float64(k.delays)
		}
		dom.Rows = append(dom.Rows, []any{k.n, k.bytes, k.defers, round(avg), round(k.max), k.k})
	}
	r.Tables = append(r.Tables, dom,
		ranked(s.sendDom, "sender-domains", "Receipt by sender domain", top, byN, "received", "bytes", "domain"),
		ranked(s.senders, "senders", "Senders by message count", top, byN, "received", "bytes", "sender"),
		ranked(s.senders, "senders-by-size", "Senders by message size", top, byBytes, "received", "bytes", "sender"),
		ranked(s.rcpts, "recipients", "Recipients by message count", top, byN, "delivered", "bytes", "recipient"),
		ranked(s.rcpts, "recipients-by-size", "Recipients by message size", top, byBytes, "delivered", "bytes", "recipient"),
		ranked(s.sendHosts, "hosts", "Sending hosts", top, byN, "received", "bytes", "host"),
		ranked(s.rejReason, "reject-reasons", "Rejects by reason", top, byN, "count", "reason"),
		refused(s.rejClass, "restrictions", "Refusals by restriction", top, "restriction"),
		ranked(s.tempReason, "tempfail-reasons", "Tempfails by reason", top, byN, "count", "reason"),
		refused(s.refusedClients, "refused-clients", "Refused clients", top, "client"),
		refused(s.refusedSenders, "refused-senders", "Refused senders", top, "sender"),
		ranked(s.deferReason, "deferral-reasons", "Deferral reasons", top, byN, "count", "reason"),
		ranked(s.bounceReason, "bounce-reasons", "Bounce reasons", top, byN, "count", "reason"),
		ranked(s.held, "held", "Held messages", top, byN, "count", "reason"),
		ranked(s.discarded, "discarded", "Discarded messages", top, byN, "count", "reason"),
	)
	delays := Table{Name: "delays", Title: "Delivery delay percentiles (seconds)", Columns: []string{"seconds", "percentile"}, Rows: [][]any{}}
	if s.delays.n > 0 {
		for _, q := range []struct {
			name string
			q    float64
		}{{"50%", .5}, {"90%", .9}, {"95%", .95}, {"99%", .99}} {
			delays.Rows = append(delays.Rows, []any{round(s.delays.quantile(q.q)), q.name})
		}
		delays.Rows = append(delays.Rows, []any{round(s.delays.max), "max"})
	}
	r.Tables = append(r.Tables, delays,
		ranked(s.stageAction, "verdicts", "mf verdicts per stage", 0, byN, "count", "stage", "action"),
		ranked(s.stageReason, "verdict-reasons", "mf verdicts per stage and reason", top, byN, "count", "stage", "reason"),
		ranked(s.finalAction, "decisions", "mf decisions per phase", 0, byN, "count", "phase", "action"),
		s.problemTable(),
	)
	return r
}

// refused lists clients or senders by refusals, rejects and tempfails.
func refused(t *table, name, title string, top int, col string) Table {
	out := Table{Name: name, Title: title, Columns: []string{"rejected", "tempfailed", col}, Rows: [][]any{}}
	for _, k := range t.top(top, func(r *row) float64 { return float64(r.n + r.temp) }) {
		out.Rows = append(out.Rows, []any{k.n, k.temp, k.k})
	}
	return out
}

// problemTable lists the trouble reported, per program and kind, most
// frequent first, with the first and last time and one sample line.
func (s *Summary) problemTable() Table {
	out := Table{Name: "problems", Title: "Problems (warnings, errors, fatals, panics; milter and mf-bridge trouble)",
		Columns: []string{"count", "first", "last", "program", "kind", "sample"}, Rows: [][]any{}}
	keys := make([]string, 0, len(s.problems))
	for k := range s.problems {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := s.problems[keys[i]], s.problems[keys[j]]
		if a.n != b.n {
			return a.n > b.n
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		p := s.problems[k]
		prog, kind, _ := strings.Cut(k, "\x00")
		out.Rows = append(out.Rows, []any{p.n, s.stampOf(p.first), s.stampOf(p.last), prog, kind, p.sample})
	}
	return out
}

func (s *Summary) stampOf(ns int64) string {
	return time.Unix(0, ns).In(s.o.Loc).Format("2006-01-02 15:04:05")
}

// ranked lists a table by count: cols are the numbers (count, then
// bytes if there are 3+ columns) and the key, split at NUL into columns.
func ranked(t *table, name, title string, top int, by func(*row) float64, cols ...string) Table {
	out := Table{Name: name, Title: title, Columns: cols, Rows: [][]any{}}
	nums := 1
	if len(cols) >= 3 && cols[1] == "bytes" {
		nums = 2
	}
	for _, k := range t.top(top, by) {
		row := []any{k.n}
		if nums == 2 {
			row = append(row, k.bytes)
		}
		for _, p := range strings.SplitN(k.k, "\x00", len(cols)-nums) {
			row = append(row, p)
		}
		for len(row) < len(cols) {
			row = append(row, "")
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

func round(f float64) float64 { return math.Round(f*10) / 10 }

// Table returns the named table; "totals" is the grand totals as rows.
func (r *Report) Table(name string) (Table, bool) {
	if name == "totals" {
		t := Table{Name: "totals", Title: "Grand totals", Columns: []string{"value", "name"}, Rows: [][]any{}}
		for _, kv := range r.Totals.list() {
			t.Rows = append(t.Rows, []any{kv.v, kv.k})
		}
		return t, true
	}
	for _, t := range r.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

type kv struct {
	k string
	v int64
}

func (t *Totals) list() []kv {
	return []kv{
		{"received", t.Received}, {"delivered", t.Delivered}, {"forwarded", t.Forwarded},
		{"deferred", t.Deferred}, {"deferrals", t.Deferrals}, {"bounced", t.Bounced},
		{"rejected", t.Rejected}, {"tempfailed", t.Tempfailed}, {"rejected_percent", t.RejectedPercent}, {"reject_warnings", t.RejectWarnings},
		{"held", t.Held}, {"discarded", t.Discarded}, {"filtered", t.Filtered},
		{"bytes_received", t.BytesReceived}, {"bytes_delivered", t.BytesDelivered},
		{"senders", int64(t.Senders)}, {"sending_hosts", int64(t.SendingHosts)}, {"sending_domains", int64(t.SendingDomains)},
		{"recipients", int64(t.Recipients)}, {"recipient_domains", int64(t.RecipientDomains)},
		{"decisions", t.Decisions}, {"problems", t.Problems},
	}
}
