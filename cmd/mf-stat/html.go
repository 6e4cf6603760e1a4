package main

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"sync"

	"mf/lib/summary"
)

// The page stands alone: styles and charts (SVG) inline, no script, no
// external asset, so it can be mailed or opened from disk. Charts are
// drawn at the size they are shown, so their text is as large as the
// page's.
// It is parsed when first needed, not at every start of mf-stat.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{"cell": htmlCell}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mail summary{{if .R.From}}, {{.Period}}{{end}}</title>
<style>
:root{--ink:#1d2733;--muted:#5b6775;--line:#dde3ea;--bg:#f6f8fa}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:var(--bg)}
main{max-width:84em;margin:0 auto;padding:1.5em}
header h1{font-size:1.6em;margin:0}header p{color:var(--muted);margin:.2em 0 1em}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5em,1fr));gap:.8em;margin:0 0 1.5em}
.figure{background:#fff;border:1px solid var(--line);border-radius:8px;padding:.7em .9em}
.figure .n{font-size:1.7em;font-weight:600;display:block}.figure .l{color:var(--muted);font-size:.9em}
.figure .d{font-size:.85em;display:block}.up{color:#b3261e}.down{color:#1e7b34}.same{color:var(--muted)}
.figure.good .up{color:#1e7b34}.figure.good .down{color:#b3261e}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1em 1.2em;margin:0 0 1.2em}
section h2{font-size:1.15em;margin:0 0 .6em}
.pair{display:flex;flex-wrap:wrap;gap:1.2em 2em;align-items:flex-start}.pair>div{flex:1 1 18em;min-width:0;overflow-x:auto}.pair>div.chart{flex:0 0 auto}
table{border-collapse:collapse;font-size:.92em;width:100%}
th{font-weight:600;color:var(--muted);border-bottom:2px solid var(--line);text-align:right;padding:.25em .45em}
td{padding:.2em .45em;text-align:right;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
td.k,th.k{text-align:left;overflow-wrap:anywhere}td:first-child.k{white-space:nowrap}td.k:last-child{white-space:normal}
.legend{margin:.2em 0 .4em;color:var(--muted);font-size:.9em}.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .9em;border-radius:2px;vertical-align:baseline}
svg text{font:12px system-ui,sans-serif;fill:#3b4652}
.empty{color:var(--muted)}
footer{color:var(--muted);font-size:.85em;margin-top:1em}
</style></head><body><main>
<header><h1>Mail summary</h1>
<p>{{if .R.From}}{{.Period}}{{else}}No events in the logs read.{{end}}{{if .Prev}} &middot; compared with the previous run, {{.Prev}}{{end}}</p></header>
<div class="figures" id="key-figures">{{range .Figures}}<div class="figure{{if .Good}} good{{end}}"><span class="n">{{.Value}}</span><span class="l">{{.Label}}</span>{{if .Change}}<span class="d {{.Dir}}">{{.Change}}</span>{{end}}</div>{{end}}</div>
{{range .Sections}}<section id="{{.ID}}"><h2>{{.Title}}</h2>
{{if .Empty}}<p class="empty">{{.Empty}}</p>{{else}}<div class="pair">{{if .SVG}}<div class="chart">{{if .Legend}}<p class="legend">{{range .Legend}}<span style="background:{{.Color}}"></span>{{.Name}}{{end}}</p>{{end}}{{.SVG}}</div>{{end}}
{{range .Tables}}<div><table><thead><tr>{{range $i, $c := .Columns}}<th{{if index $.KeyCol $i}} class="k"{{end}}>{{$c}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}{{cell .}}{{end}}</tr>
{{end}}</tbody></table></div>{{end}}</div>{{end}}
</section>
{{end}}
<footer>Lines: {{.R.Lines.Read}} read, {{.R.Lines.Events}} events, {{.R.Lines.Repeated}} repeated, {{.R.Lines.Unparsed}} unparsed, {{.R.Lines.Unrecognized}} mail lines not understood, {{.R.Lines.Foreign}} of other programs. Made by mf-stat.</footer>
</main></body></html>
`))
})

// htmlCell is a table cell: numbers right-aligned, text left.
func htmlCell(c any) template.HTML {
	switch v := c.(type) {
	case string:
		return template.HTML(`<td class="k">` + template.HTMLEscapeString(cell(v)) + `</td>`)
	case int64:
		return template.HTML(`<td>` + thousands(v) + `</td>`)
	}
	return template.HTML(`<td>` + template.HTMLEscapeString(cell(c)) + `</td>`)
}

// thousands writes 1234567 as 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesHuman writes a byte count as 1.2 MB.
func bytesHuman(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1000
	}
	return ""
}

type series struct {
	Name, Color string
	col         int
}

type figure struct {
	Label, Value, Change, Dir string
	Good                      bool // more is better: the change is coloured the other way
}

type section struct {
	ID, Title, Empty string
	SVG              template.HTML
	Legend           []series
	Tables           []summary.Table
}

// labels are the column names and totals as a person reads them.
var labels = map[string]string{
	"received": "received", "delivered": "delivered", "deferrals": "deferrals", "bounced": "bounced", "rejected": "rejected",
	"tempfailed": "tempfailed", "bytes": "bytes", "avg_delay": "avg delay (s)", "max_delay": "max delay (s)", "domain": "domain",
	"count": "count", "reason": "reason", "restriction": "restriction", "client": "client", "sender": "sender", "recipient": "recipient",
	"host": "host", "seconds": "seconds", "percentile": "percentile", "stage": "stage", "action": "action", "phase": "phase",
	"first": "first", "last": "last", "program": "program", "kind": "kind", "sample": "sample", "date": "date", "hour": "hour",
}

var traffic = []series{{"received", "#3b6ea8", 1}, {"delivered", "#4a9a5b", 2}, {"deferrals", "#e3912b", 3}, {"bounced", "#9b6bb0", 4}, {"rejected", "#d1493f", 5}, {"tempfailed", "#e8b3ae", 6}}

func writeHTML(out *bytes.Buffer, r *summary.Report, prev *previous) error {
	data := struct {
		R        *summary.Report
		Period   string
		Prev     string
		Figures  []figure
		Sections []section
		KeyCol   map[int]bool
	}{R: r, KeyCol: map[int]bool{}}
	if r.From != "" {
		data.Period = strings.Replace(r.From, "T", " ", 1) + " to " + strings.Replace(r.To, "T", " ", 1)
	}
	if prev != nil && prev.From != "" {
		data.Prev = strings.Replace(prev.From, "T", " ", 1) + " to " + strings.Replace(prev.To, "T", " ", 1)
	}
	t := r.Totals
	var p *summary.Totals
	if prev != nil {
		p = &prev.Totals
	}
	fig := func(label string, v int64, pv func(*summary.Totals) int64, good bool, format func(int64) string) {
		f := figure{Label: label, Value: format(v), Good: good}
		if p != nil {
			f.Change, f.Dir = change(v, pv(p))
		}
		data.Figures = append(data.Figures, f)
	}
	fig("received", t.Received, func(p *summary.Totals) int64 { return p.Received }, true, thousands)
	fig("delivered", t.Delivered, func(p *summary.Totals) int64 { return p.Delivered }, true, thousands)
	fig("deferred messages", t.Deferred, func(p *summary.Totals) int64 { return p.Deferred }, false, thousands)
	fig("bounced", t.Bounced, func(p *summary.Totals) int64 { return p.Bounced }, false, thousands)
	fig("rejected", t.Rejected, func(p *summary.Totals) int64 { return p.Rejected }, false, thousands)
	fig("tempfailed", t.Tempfailed, func(p *summary.Totals) int64 { return p.Tempfailed }, false, thousands)
	fig("problems", t.Problems, func(p *summary.Totals) int64 { return p.Problems }, false, thousands)
	fig("received", t.BytesReceived, func(p *summary.Totals) int64 { return p.BytesReceived }, true, bytesHuman)
	if t.Decisions > 0 {
		fig("mf decisions", t.Decisions, func(p *summary.Totals) int64 { return p.Decisions }, true, thousands)
	}

	tab := func(name string) summary.Table {
		tb, _ := r.Table(name)
		return humanTable(tb)
	}
	add := func(s section) { data.Sections = append(data.Sections, s) }
	busy := func(tb summary.Table) bool {
		for _, row := range tb.Rows {
			for _, c := range row[1:] {
				if v, ok := c.(int64); ok && v != 0 {
					return true
				}
			}
		}
		return false
	}
	hours, days := tab("hours"), tab("days")
	if busy(hours) {
		add(section{ID: "hours", Title: hours.Title, SVG: bars(hours, traffic, 500), Legend: traffic, Tables: []summary.Table{hours}})
	} else {
		add(section{ID: "hours", Title: hours.Title, Empty: "No traffic."})
	}
	if len(days.Rows) > 0 {
		add(section{ID: "days", Title: days.Title, SVG: bars(days, traffic, min(500, 120+len(days.Rows)*60)), Legend: traffic, Tables: []summary.Table{days}})
	} else {
		add(section{ID: "days", Title: days.Title, Empty: "No traffic."})
	}
	rr := tab("reject-reasons")
	add(section{ID: "rejects", Title: "Rejects by reason", SVG: hbars(rr, 0, len(rr.Columns)-1, "#d1493f"),
		Tables: []summary.Table{rr, tab("restrictions"), tab("tempfail-reasons"), tab("refused-clients"), tab("refused-senders")},
		Empty:  emptyIf(len(rr.Rows)+len(tab("tempfail-reasons").Rows) == 0, "No refusals.")})
	v := tab("verdicts")
	flat := summary.Table{Columns: []string{"count", "stage and verdict"}}
	for _, row := range v.Rows {
		flat.Rows = append(flat.Rows, []any{row[0], cell(row[1]) + ": " + cell(row[2])})
	}
	add(section{ID: "verdicts", Title: "mf verdicts per stage", SVG: hbars(flat, 0, 1, "#3f8f8a"),
		Tables: []summary.Table{v, tab("decisions"), tab("verdict-reasons")}, Empty: emptyIf(len(v.Rows) == 0, "No mf-bridge decision records.")})
	d := tab("delays")
	add(section{ID: "delays", Title: "Delivery delay percentiles", SVG: hbars(d, 0, 1, "#3b6ea8"), Tables: []summary.Table{d},
		Empty: emptyIf(len(d.Rows) == 0, "No deliveries with a delay.")})
	pr := tab("problems")
	add(section{ID: "problems", Title: "Problems", Tables: []summary.Table{pr}, Empty: emptyIf(len(pr.Rows) == 0, "No warnings, errors, fatals or panics.")})
	add(section{ID: "domains", Title: "Recipient and sender domains", Tables: nonEmpty(tab("recipient-domains"), tab("sender-domains")), Empty: emptyIf(t.Received+t.Delivered == 0, "None.")})
	add(section{ID: "people", Title: "Senders, recipients and sending hosts", Tables: nonEmpty(tab("senders"), tab("senders-by-size"), tab("recipients"), tab("recipients-by-size"), tab("hosts")), Empty: emptyIf(t.Received+t.Delivered == 0, "None.")})
	add(section{ID: "failures", Title: "Deferrals, bounces, held and discarded", Tables: nonEmpty(tab("deferral-reasons"), tab("bounce-reasons"), tab("held"), tab("discarded")),
		Empty: emptyIf(t.Deferrals+t.Bounced+t.Held+t.Discarded == 0, "None.")})
	// The first column named by text is the key (left-aligned).
	return page().Execute(out, data)
}

func emptyIf(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func nonEmpty(ts ...summary.Table) []summary.Table {
	var out []summary.Table
	for _, t := range ts {
		if len(t.Rows) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// humanTable names a table's columns as a person reads them, and puts
// its title in the first column's place when it is one of several.
func humanTable(t summary.Table) summary.Table {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		if l, ok := labels[c]; ok {
			c = l
		}
		cols[i] = c
	}
	t.Columns = cols
	return t
}

// change is "+12% on the previous run", and whether it went up.
func change(now, before int64) (string, string) {
	switch {
	case before == 0 && now == 0:
		return "unchanged", "same"
	case before == 0:
		return "new (was 0)", "up"
	}
	pct := math.Round(float64(now-before) * 100 / float64(before))
	switch {
	case pct > 0:
		return fmt.Sprintf("+%.0f%% on the previous run", pct), "up"
	case pct < 0:
		return fmt.Sprintf("%.0f%% on the previous run", pct), "down"
	}
	return "unchanged", "same"
}

// bars draws grouped vertical bars: one group per row (labelled by
// column 0), one bar per series, in width pixels.
func bars(t summary.Table, ss []series, width int) template.HTML {
	const h, top, left = 200, 12, 48
	n := max(len(t.Rows), 1)
	slot := float64(width-left-8) / float64(n)
	longest := 0
	for _, row := range t.Rows {
		longest = max(longest, len(cell(row[0])))
	}
	if t.Name == "hours" {
		longest = 2
	}
	slanted := float64(longest)*7 > slot
	bottom := 24
	if slanted {
		bottom = 16 + longest*6
	}
	var maxv int64 = 1
	for _, row := range t.Rows {
		for _, s := range ss {
			if v, ok := row[s.col].(int64); ok && v > maxv {
				maxv = v
			}
		}
	}
	maxv = niceCeil(maxv)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, width, h+bottom, width, h+bottom, template.HTMLEscapeString(t.Title))
	for i := 0; i <= 4; i++ { // grid lines and the axis
		y := float64(h) - float64(h-top)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, left, y, width, y, map[bool]string{true: "#8a96a3", false: "#e6eaef"}[i == 0])
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-6, y+4, short(maxv*int64(i)/4))
	}
	bw := (slot - 4) / float64(len(ss))
	for i, row := range t.Rows {
		x := float64(left) + float64(i)*slot + 2
		for j, s := range ss {
			v, _ := row[s.col].(int64)
			bh := float64(v) / float64(maxv) * float64(h-top)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %d</title></rect>`,
				x+float64(j)*bw, float64(h)-bh, math.Max(bw-1, 1), bh, s.Color, template.HTMLEscapeString(cell(row[0])), s.Name, v)
		}
		label := template.HTMLEscapeString(cell(row[0]))
		if t.Name == "hours" {
			label = label[:2] // "13" for "13-14": the table beside has the rest
		}
		cx := x + slot/2 - 2
		if slanted {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-45 %.1f %d)">%s</text>`, cx, h+14, cx, h+14, label)
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, cx, h+16, label)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// hbars draws one horizontal bar per row: the value in column vc, the
// label in column lc.
func hbars(t summary.Table, vc, lc int, color string) template.HTML {
	if len(t.Rows) == 0 {
		return ""
	}
	const width, row, labelW = 560, 22, 260
	h := len(t.Rows)*row + 8
	var maxv float64 = 1
	for _, r := range t.Rows {
		maxv = math.Max(maxv, num(r[vc]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, width, h, width, h)
	for i, r := range t.Rows {
		y := 4 + i*row
		v := num(r[vc])
		w := v / maxv * float64(width-labelW-60)
		label := cell(r[lc])
		if len([]rune(label)) > 38 {
			label = string([]rune(label)[:37]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-8, y+15, template.HTMLEscapeString(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"><title>%s: %s</title></rect>`, labelW, y+3, math.Max(w, 1), row-6, color,
			template.HTMLEscapeString(cell(r[lc])), template.HTMLEscapeString(cell(r[vc])))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`, float64(labelW)+math.Max(w, 1)+6, y+15, template.HTMLEscapeString(cell(r[vc])))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func num(c any) float64 {
	switch v := c.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, for axis ticks.
func niceCeil(v int64) int64 {
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 4, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// short writes axis numbers: 1500 is 1.5k.
func short(v int64) string {
	switch {
	case v >= 1_000_000:
		return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + "M"
	case v >= 10_000:
		return strconv.FormatFloat(float64(v)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(v, 10)
}
