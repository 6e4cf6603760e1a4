package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"mf/lib/maillog"
	"mf/lib/summary"
)

func stat1(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--config", "/dev/null", "--now", "2026-11-23T12:00:00Z", "--tz", "UTC"}, args...)
	code := run(context.Background(), strings.NewReader(stdin), &out, &errb, args, func(string) (string, bool) { return "", false })
	return out.String(), errb.String(), code
}

func TestWhen(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 3, 30, 12, 0, 0, 0, berlin) // the day after summer time began
	for in, want := range map[string][2]string{
		"yesterday":            {"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}, // 23 hours
		"today":                {"2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"},
		"2026-10-25":           {"2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"}, // 25 hours
		"-1d":                  {"2026-03-29T12:00:00+02:00", "2026-03-29T12:00:00+02:00"},
		"-2h":                  {"2026-03-30T10:00:00+02:00", "2026-03-30T10:00:00+02:00"},
		"2026-03-01 10:30":     {"2026-03-01T10:30:00+01:00", "2026-03-01T10:30:00+01:00"},
		"2026-03-01T10:30:00Z": {"2026-03-01T11:30:00+01:00", "2026-03-01T11:30:00+01:00"},
	} {
		s, e, err := when(in, now, berlin)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := [2]string{s.In(berlin).Format(time.RFC3339), e.In(berlin).Format(time.RFC3339)}; got != want {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"", "tomorrowish", "-d", "-3x", "2026-13-01"} {
		if _, _, err := when(bad, now, berlin); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The parallel pipeline over a real log, under the race detector, gives
// the same report as one chunk at a time would: compare with stdin read
// whole.
func TestPipeline(t *testing.T) {
	out1, errs, code := stat1(t, "", "--json", "testdata/postfix-maillog.gz", "testdata/postfix-mailog2.gz", "testdata/sendmail.log", "testdata/qmail.log")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	out2, _, _ := stat1(t, "", "--json", "testdata/qmail.log", "testdata/sendmail.log", "testdata/postfix-mailog2.gz", "testdata/postfix-maillog.gz")
	if out1 != out2 {
		t.Error("the order of the files changed the report")
	}
	var r summary.Report
	if err := json.Unmarshal([]byte(out1), &r); err != nil || len(r.Tables) != len(summary.TableNames)-1 {
		t.Fatalf("json: %v, %d tables", err, len(r.Tables))
	}
	for _, tb := range r.Tables {
		for _, row := range tb.Rows {
			if len(row) != len(tb.Columns) {
				t.Errorf("%s: row %v has %d cells for %d columns", tb.Name, row, len(row), len(tb.Columns))
			}
		}
	}
	// 13888 + 6747 lines of the dump, 16 of sendmail.log, 18 of qmail.log.
	if !strings.Contains(out1, `"read": 20669,`) {
		t.Errorf("lines read: %s", out1[strings.Index(out1, `"lines"`):][:60])
	}
}

func TestTextWidth(t *testing.T) {
	out, _, code := stat1(t, "", "--top", "0", "testdata/postfix-maillog.gz", "testdata/mf-records.jsonl")
	if code != 0 {
		t.Fatal(code)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("%d columns: %s", n, l)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch.log"},
		{"--day", "today", "--since", "today"},
		{"--top", "-1"},
		{"--now", "yesterday"},
		{"--mta", "exim"},
		{"--json", "--html"},
	} {
		out, errs, code := stat1(t, "", args...)
		if code != 75 || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	// A file that says gzip and is not is an error, not a short report.
	bad := t.TempDir() + "/bad.gz"
	os.WriteFile(bad, []byte("\x1f\x8b\x08\x00garbage"), 0o644)
	if out, _, code := stat1(t, "", bad); code != 75 || out != "" {
		t.Errorf("corrupt gzip: exit %d, %q", code, out)
	}
	if _, _, code := stat1(t, "garbage\n\x00\xff\n", "--csv", "totals"); code != 0 {
		t.Errorf("junk on stdin: exit %d", code)
	}
}

// A line that makes the parser panic is logged with its file and line
// number, counted as unparsed, and the run goes on.
func TestParserPanic(t *testing.T) {
	saved := parseLine
	defer func() { parseLine = saved }()
	parseLine = func(p *maillog.Parser, line []byte, ev *maillog.Event) maillog.Result {
		if bytes.Contains(line, []byte("BOOM")) {
			panic("index out of range")
		}
		return saved(p, line, ev)
	}
	log := t.TempDir() + "/mail.log"
	lines := "Nov 23 10:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n" +
		"Nov 23 10:00:01 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<a>\n" +
		"Nov 23 10:00:02 mx postfix/smtpd[1]: BOOM\n" +
		"Nov 23 10:00:03 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 554 5.7.1 <z@y>: Relay access denied; from=<a@b> to=<z@y> proto=ESMTP helo=<a>\n"
	// 5000 lines first, so that the line is in a later chunk than the first.
	lines = strings.Repeat("Nov 23 09:59:59 mx postfix/smtpd[1]: connect from a-rather-long-client-name.example.net[192.0.2.1]\n", 5000) + lines
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := stat1(t, "", "--json", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, log+":5003: parser panic") || !strings.Contains(errs, "index out of range") {
		t.Errorf("stderr %q: want %s:5003 and the panic", errs, log)
	}
	var r summary.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Lines.Unparsed != 1 || r.Totals.Rejected != 2 {
		t.Errorf("unparsed %d rejected %d, want 1 and 2", r.Lines.Unparsed, r.Totals.Rejected)
	}
}
