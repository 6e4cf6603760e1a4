package main

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"mf/lib/summary"
)

// The page stands alone: styles and charts (SVG) inline, no script, no
// external asset, so it can be mailed or opened from disk.
var page = template.Must(template.New("page").Funcs(template.FuncMap{"cell": cell}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mf-stat{{if .R.From}} {{.R.From}} to {{.R.To}}{{end}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:.15em .7em;text-align:right}td.k,th.k{text-align:left}
tr:nth-child(even){background:#f4f4f4}.totals td{text-align:right}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}
svg text{font:11px sans-serif;fill:#444}
</style></head><body>
<h1>Mail summary</h1>
{{if .R.From}}<p>{{.R.From}} to {{.R.To}}</p>{{end}}
<h2>Grand totals</h2>
<table class="totals">{{range .Totals}}<tr><td>{{index . 0}}</td><td class="k">{{index . 1}}</td></tr>{{end}}</table>
{{range .Charts}}<h2>{{.Title}}</h2>
<p class="legend">{{range .Series}}<span style="background:{{.Color}}"></span>{{.Name}}{{end}}</p>
{{.SVG}}
{{end}}
{{range .R.Tables}}{{if .Rows}}<h2>{{.Title}}</h2>
<table><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{cell .}}</td>{{end}}</tr>
{{end}}</table>
{{end}}{{end}}
<p><small>Lines: {{.R.Lines.Read}} read, {{.R.Lines.Events}} events, {{.R.Lines.Repeated}} repeated, {{.R.Lines.Unparsed}} unparsed.</small></p>
</body></html>
`))

type series struct {
	Name, Color string
	col         int
}

type chart struct {
	Title  string
	Series []series
	SVG    template.HTML
}

var traffic = []series{{"received", "#4e79a7", 1}, {"delivered", "#59a14f", 2}, {"deferred", "#f28e2b", 3}, {"bounced", "#b07aa1", 4}, {"rejected", "#e15759", 5}}

func writeHTML(out *bytes.Buffer, r *summary.Report, prev *previous) error {
	data := struct {
		R      *summary.Report
		Totals [][2]string
		Charts []chart
	}{R: r}
	tt, _ := r.Table("totals")
	for _, row := range tt.Rows {
		data.Totals = append(data.Totals, [2]string{cell(row[0]), cell(row[1])})
	}
	for _, name := range []string{"hours", "days"} {
		t, _ := r.Table(name)
		if len(t.Rows) > 0 {
			data.Charts = append(data.Charts, chart{t.Title, traffic, bars(t, traffic)})
		}
	}
	if t, _ := r.Table("decisions"); len(t.Rows) > 0 {
		// one bar per phase and action
		s := []series{{"decisions", "#76b7b2", 0}}
		flat := summary.Table{Columns: []string{"what", "count"}}
		for _, row := range t.Rows {
			flat.Rows = append(flat.Rows, []any{cell(row[1]) + " " + cell(row[2]), row[0]})
		}
		s[0].col = 1
		data.Charts = append(data.Charts, chart{t.Title, s, bars(flat, s)})
	}
	return page.Execute(out, data)
}

// bars draws grouped bars: one group per row (labelled by column 0), one
// bar per series.
func bars(t summary.Table, ss []series) template.HTML {
	const h, top = 180, 10
	group := 8 * len(ss)
	if group < 24 {
		group = 24
	}
	// Labels slant at 60 degrees; room below and to the right for the
	// longest, at about 6.5 px a character of 11 px text.
	longest := 0
	for _, row := range t.Rows {
		longest = max(longest, len(cell(row[0])))
	}
	bottom := 16 + longest*57/10
	w := 40 + len(t.Rows)*(group+6) + longest*33/10
	var maxv int64 = 1
	for _, row := range t.Rows {
		for _, s := range ss {
			if v, ok := row[s.col].(int64); ok && v > maxv {
				maxv = v
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" style="max-width:100%%;height:auto" role="img">`, w, h+bottom, w)
	fmt.Fprintf(&b, `<line x1="36" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, h, w, h)
	fmt.Fprintf(&b, `<text x="32" y="%d" text-anchor="end">%d</text><text x="32" y="%d" text-anchor="end">0</text>`, top+4, maxv, h)
	for i, row := range t.Rows {
		x := 40 + i*(group+6)
		bw := group / len(ss)
		for j, s := range ss {
			v, _ := row[s.col].(int64)
			bh := int(float64(v) / float64(maxv) * float64(h-top))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s: %d</title></rect>`,
				x+j*bw, h-bh, max(bw-1, 1), bh, s.Color, template.HTMLEscapeString(cell(row[0])), s.Name, v)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" transform="rotate(60 %d %d)">%s</text>`, x+2, h+12, x+2, h+12, template.HTMLEscapeString(cell(row[0])))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
