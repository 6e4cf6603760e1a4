package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"mf/lib/summary"
)

func writeJSON(out *bytes.Buffer, r *summary.Report) error {
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func writeCSV(out *bytes.Buffer, r *summary.Report, name string) error {
	t, _ := r.Table(name)
	w := csv.NewWriter(out)
	w.Write(t.Columns)
	for _, row := range t.Rows {
		rec := make([]string, len(row))
		for i, c := range row {
			rec[i] = cell(c)
		}
		w.Write(rec)
	}
	w.Flush()
	return w.Error()
}

func cell(c any) string {
	switch v := c.(type) {
	case string:
		return strings.ToValidUTF8(v, "\uFFFD")
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(c)
}

const width = 80

// writeText prints the report for a person, in 80 columns: pflogsumm's
// layout, numbers on the left and the name on the right, cut to fit.
func writeText(out *bytes.Buffer, r *summary.Report) error {
	t := r.Totals
	if r.From != "" {
		fmt.Fprintf(out, "mf-stat: %s to %s\n\n", r.From, r.To)
	}
	out.WriteString("Grand totals\n------------\n")
	line := func(n int64, what string) { fmt.Fprintf(out, "%9s  %s\n", human(n), what) }
	line(t.Received, "received")
	line(t.Delivered, "delivered")
	line(t.Forwarded, "forwarded")
	line(t.Deferred, fmt.Sprintf("deferred  (%d deferrals)", t.Deferrals))
	line(t.Bounced, "bounced")
	line(t.Rejected, fmt.Sprintf("rejected (%d%%)", t.RejectedPercent))
	line(t.Tempfailed, "tempfailed")
	line(t.RejectWarnings, "reject warnings")
	line(t.Held, "held")
	line(t.Discarded, "discarded")
	line(t.Filtered, "handed on locally and re-injected (content filter, MSP)")
	out.WriteByte('\n')
	line(t.BytesReceived, "bytes received")
	line(t.BytesDelivered, "bytes delivered")
	capped := ""
	if t.Capped {
		capped = " (at least: a table filled up)"
	}
	line(int64(t.Senders), "senders"+capped)
	line(int64(t.SendingHosts), "sending hosts")
	line(int64(t.SendingDomains), "sending domains")
	line(int64(t.Recipients), "recipients")
	line(int64(t.RecipientDomains), "recipient domains")
	if t.Decisions > 0 {
		line(t.Decisions, "mf decisions")
	}
	if t.Problems > 0 {
		line(t.Problems, "problems: warnings, errors, fatals, panics (listed below)")
	}
	l := r.Lines
	fmt.Fprintf(out, "\nLines: %d read, %d events, %d repeated, %d unparsed,\n       %d other mail lines, %d not understood (see --unparsed),\n       %d of other programs\n",
		l.Read, l.Events, l.Repeated, l.Unparsed, l.Known, l.Unrecognized, l.Foreign)
	for _, tb := range r.Tables {
		if len(tb.Rows) == 0 || tb.Name == "hours" && r.Totals.Received+r.Totals.Delivered+r.Totals.Rejected+r.Totals.Deferrals+r.Totals.Bounced == 0 {
			continue
		}
		if tb.Name == "problems" {
			writeProblems(out, tb)
			continue
		}
		writeTable(out, tb)
	}
	return nil
}

// writeProblems gives each kind of trouble two lines: the count, program,
// kind, first and last time, then a sample, cut to fit.
func writeProblems(out *bytes.Buffer, t summary.Table) {
	fmt.Fprintf(out, "\n%s\n%s\n", t.Title, strings.Repeat("-", min(len(t.Title), width)))
	for _, row := range t.Rows {
		first, last := cell(row[1]), cell(row[2])
		if first[:10] == last[:10] {
			last = last[11:] // the same day: its time
		}
		fmt.Fprintf(out, "%9s  %s %s, %s .. %s\n", human(row[0].(int64)), printable(cell(row[3])), printable(cell(row[4])), first, last)
		s := "           " + printable(cell(row[5]))
		if utf8.RuneCountInString(s) > width {
			s = string([]rune(s)[:width-1]) + "~"
		}
		out.WriteString(s + "\n")
	}
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// human keeps big numbers in 9 columns: 12345678901 is "12345m".
func human(n int64) string {
	if n >= 1_000_000_000 {
		return strconv.FormatInt(n/1_000_000, 10) + "m"
	}
	return strconv.FormatInt(n, 10)
}

func writeTable(out *bytes.Buffer, t summary.Table) {
	fmt.Fprintf(out, "\n%s\n%s\n", t.Title, strings.Repeat("-", len(t.Title)))
	cells := make([][]string, len(t.Rows)+1)
	cells[0] = t.Columns
	widths := make([]int, len(t.Columns))
	num := make([]bool, len(t.Columns))
	for i, row := range t.Rows {
		cells[i+1] = make([]string, len(row))
		for j, c := range row {
			s := cell(c)
			if _, ok := c.(string); !ok {
				num[j] = true
				if n, ok := c.(int64); ok {
					s = human(n)
				}
			} else {
				s = strings.Map(func(r rune) rune {
					if r < ' ' || r == 0x7f {
						return '?'
					}
					return r
				}, s)
			}
			cells[i+1][j] = s
		}
	}
	for _, row := range cells {
		for j, s := range row {
			widths[j] = max(widths[j], utf8.RuneCountInString(s))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for j, s := range row {
			last := j == len(row)-1
			if last && !num[j] {
				room := width - utf8.RuneCountInString(b.String()) - 1
				if utf8.RuneCountInString(s) > room && room > 3 {
					s = string([]rune(s)[:room-1]) + "~"
				}
				b.WriteString(s)
				break
			}
			pad := strings.Repeat(" ", widths[j]-utf8.RuneCountInString(s))
			if num[j] {
				b.WriteString(pad + s)
			} else {
				b.WriteString(s + pad)
			}
			if !last {
				b.WriteString("  ")
			}
		}
		out.WriteString(strings.TrimRight(b.String(), " "))
		out.WriteByte('\n')
	}
}
