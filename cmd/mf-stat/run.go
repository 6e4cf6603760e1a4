package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // --tz works on machines without zoneinfo

	command "mf/lib/cli"
	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/maillog"
	"mf/lib/summary"
	"mf/lib/verdict"
)

const description = `Summarise Postfix, sendmail and qmail logs and mf-bridge decision records.

Reads the FILEs (or stdin), compressed with gzip, bzip2, xz or zstd or not, lines of every kind mixed, and prints grand totals, traffic per day and hour, per-domain delivery and receipt, top senders, recipients and hosts, rejects by reason and restriction, deferral and bounce reasons, delay percentiles and mf verdicts per stage. Exit status: 0 done, 75 error. See mf-stat(1).`

type cli struct {
	config.Globals
	Files []string `arg:"" optional:"" placeholder:"FILE" help:"Logs to read, in any order (they are read in the order of their first lines); \"-\" or none: stdin."`

	Since string `placeholder:"WHEN" help:"Count events from WHEN on: today, yesterday, -7d, -12h, YYYY-MM-DD (from its midnight), \"YYYY-MM-DD HH:MM\" or RFC 3339."`
	Until string `placeholder:"WHEN" help:"Count events before WHEN; a day counts to its end."`
	Day   string `placeholder:"WHEN" help:"Count one day's events: the same as --since WHEN --until WHEN; A..B for --since A --until B."`
	TZ    string `name:"tz" placeholder:"ZONE" help:"Time zone of days and hours, and of log times that carry none (default: the local zone)."`
	Now   string `placeholder:"TIME" help:"Take TIME (RFC 3339) as the current time: for today, yesterday, -7d and the year of classic syslog lines."`

	JSON bool     `name:"json" xor:"format" help:"Print the report as JSON."`
	CSV  string   `name:"csv" xor:"format" placeholder:"TABLE" help:"Print one table as CSV (totals, days, hours, recipient-domains, senders, reject-reasons, ...)."`
	HTML bool     `name:"html" xor:"format" help:"Print a self-contained HTML page with charts."`
	Top  int      `default:"10" placeholder:"N" help:"Rows of each ranked table (0: all)."`
	MTA  []string `name:"mta" enum:"postfix,sendmail,qmail,mf" placeholder:"MTA" help:"Count only the lines of these: postfix, sendmail, qmail, mf (default: all)."`

	Unparsed     string `type:"path" placeholder:"FILE" help:"Write the lines that were not understood to FILE."`
	Offsets      string `type:"path" placeholder:"FILE" help:"Cron mode: remember how far each log was read in FILE and report only what is new since the last run."`
	KeepRepeated bool   `help:"Count every copy of a repeated identical line (by default a line is counted once)."`
	MaxMessages  int    `default:"65536" placeholder:"N" help:"Queue ids followed at once (about 250 bytes each); the oldest are let go beyond this."`
	MaxKeys      int    `default:"20000" placeholder:"N" help:"Distinct keys per table (senders, domains, reasons); more are counted as (other)."`
}

// memoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT overrides).
const memoryLimit = 48 << 20

// UnusedGlobals: mf-stat keeps nothing in the state store.
func (*cli) UnusedGlobals() []string { return []string{"state-dir", "state"} }

func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) (code int) {
	log := logger.New("mf-stat", stderr)
	defer command.Recover(log, &code)
	var c cli
	_, code, done := command.Start(&c, &c.Globals, log, "mf-stat", "stat", description, args, stdout, stderr, lookupEnv)
	defer log.Close()
	if done {
		return code
	}
	if _, ok := lookupEnv("GOMEMLIMIT"); !ok {
		// A soft limit: the collector works harder near it instead of
		// letting the heap double. What is followed is bounded by the
		// flags; this keeps the garbage around it small too.
		debug.SetMemoryLimit(memoryLimit)
		if _, ok := lookupEnv("GOGC"); !ok {
			// Under the limit, collect less often than at each doubling:
			// most of what a run allocates dies young. At 800 the first
			// collection waits for 32 MB of heap, not 16: a run of the
			// benchmark log takes one collection instead of two, and
			// its peak RSS is no higher (the limit still bounds it).
			debug.SetGCPercent(800)
		}
	}
	var out bytes.Buffer
	res, err := stat(ctx, &c, stdin, &out, log)
	if err != nil {
		if res.st != nil {
			res.st.lock.Release()
		}
		log.Errorf("%v", err)
		return verdict.ExitError
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		if res.st != nil {
			res.st.lock.Release()
		}
		log.Errorf("stdout: %v", err)
		return verdict.ExitError
	}
	if res.st != nil {
		// Only once the report is out: a failed run is reported again.
		if err := res.st.save(res.flight, res.report); err != nil {
			log.Errorf("%v", err)
			return verdict.ExitError
		}
	}
	return 0
}

// options checks the flags and turns them into the summary's bounds.
func options(c *cli) (summary.Options, time.Time, error) {
	o := summary.Options{MaxKeys: c.MaxKeys, MaxMessages: c.MaxMessages, Loc: time.Local}
	if !c.KeepRepeated {
		// Hashes of the last quarter million event lines, a few MiB:
		// an overlapping rotated file or a log given twice repeats
		// within that.
		o.MaxLines = 1 << 18
	}
	now := time.Now()
	if c.TZ != "" {
		loc, err := time.LoadLocation(c.TZ)
		if err != nil {
			return o, now, fmt.Errorf("--tz: %w", err)
		}
		o.Loc = loc
	}
	if c.Now != "" {
		t, err := time.Parse(time.RFC3339, c.Now)
		if err != nil {
			return o, now, fmt.Errorf("--now: %w", err)
		}
		now = t
	}
	if c.Day != "" {
		if c.Since != "" || c.Until != "" {
			return o, now, errors.New("--day: give --day or --since/--until, not both")
		}
		c.Since, c.Until = c.Day, c.Day
		if a, b, ok := strings.Cut(c.Day, ".."); ok { // a range of days
			c.Since, c.Until = a, b
		}
	}
	var err error
	if c.Since != "" {
		if o.Since, _, err = when(c.Since, now, o.Loc); err != nil {
			return o, now, fmt.Errorf("--since: %w", err)
		}
	}
	if c.Until != "" {
		if _, o.Until, err = when(c.Until, now, o.Loc); err != nil {
			return o, now, fmt.Errorf("--until: %w", err)
		}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && !o.Until.After(o.Since) {
		return o, now, fmt.Errorf("--until %s is not after --since %s", c.Until, c.Since)
	}
	if c.CSV != "" && !slices.Contains(summary.TableNames, c.CSV) {
		return o, now, fmt.Errorf("--csv: no table %q: want one of %s", c.CSV, strings.Join(summary.TableNames, ", "))
	}
	if c.Top < 0 || c.MaxKeys < 1 || c.MaxMessages < 2 {
		return o, now, errors.New("--top, --max-keys and --max-messages must be positive")
	}
	return o, now, nil
}

// result is a run's report, and in cron mode what goes to the offsets file.
type result struct {
	st     *cronState
	flight *summary.State
	report *summary.Report
}

func stat(_ context.Context, c *cli, stdin io.Reader, out *bytes.Buffer, log *logger.Logger) (res result, err error) {
	o, now, err := options(c)
	if err != nil {
		return res, err
	}
	only := map[string]maillog.MTA{"postfix": maillog.Postfix, "sendmail": maillog.Sendmail, "qmail": maillog.Qmail, "mf": maillog.Bridge}
	newParser := func() *maillog.Parser {
		p := maillog.NewParser(o.Loc, now)
		if len(c.MTA) > 0 {
			var ms []maillog.MTA
			for _, m := range c.MTA {
				ms = append(ms, only[m])
			}
			p.Only(ms...)
		}
		return p
	}
	if len(c.Files) == 0 {
		c.Files = []string{"-"}
	}
	var ins []*input
	if c.Offsets != "" {
		if res.st, err = loadState(c.Offsets, c.LockTimeout); err != nil {
			return res, err
		}
		ins, err = stateInputs(res.st, c.Files, newParser())
	} else {
		ins, err = inputs(c.Files, stdin, newParser())
	}
	if err != nil {
		return res, err
	}
	defer func() {
		for _, in := range ins {
			in.close()
		}
	}()
	err = report(c, o, ins, newParser, out, log, &res)
	return res, err
}

func report(c *cli, o summary.Options, ins []*input, newParser func() *maillog.Parser, out *bytes.Buffer, log *logger.Logger, res *result) error {
	var unparsed *bufio.Writer
	if c.Unparsed != "" {
		f, err := os.Create(c.Unparsed)
		if err != nil {
			return fmt.Errorf("--unparsed: %w", err)
		}
		defer f.Close()
		unparsed = bufio.NewWriter(f)
	}
	s := summary.New(o)
	if res.st != nil {
		s.Restore(res.st.Flight)
	}
	err := scan(ins, newParser, unparsed != nil, s.Seen(), func(b *batch, c *chunk, before int64) {
		if c.long != nil {
			s.Lines.Read++
			s.Lines.Unparsed++
			if unparsed != nil {
				unparsed.Write(c.long)
				unparsed.WriteString("... (a line longer than 16 MiB, cut)\n")
			}
		}
		for _, p := range b.panics {
			where := ""
			if c.in.offset > 0 {
				where = fmt.Sprintf(" (after byte %d)", c.in.offset)
			}
			log.Errorf("%s:%d%s: parser panic, line counted as unparsed: %s", c.in.name, before+p.line, where, p.err)
		}
		s.Lines.Read += b.lines.Read
		s.Lines.Known += b.lines.Known
		s.Lines.Unrecognized += b.lines.Unrecognized
		s.Lines.Foreign += b.lines.Foreign
		s.Lines.Unparsed += b.lines.Unparsed
		for i := range b.events { // b.repeated is scan's
			if b.repeated[i] {
				s.Lines.Repeated++
				continue
			}
			s.AddKeyed(&b.events[i], b.keys[i])
		}
		for _, l := range b.unparsed {
			unparsed.Write(l)
			unparsed.WriteByte('\n')
		}
	})
	if err != nil {
		return err
	}
	if unparsed != nil {
		if err := unparsed.Flush(); err != nil {
			return fmt.Errorf("--unparsed: %w", err)
		}
	}
	if res.st != nil {
		res.flight = s.Keep()
	} else {
		s.Finish()
	}
	r := s.Report(c.Top)
	res.report = r
	var prev *previous
	if res.st != nil {
		prev = res.st.Previous
	}
	log.Debugf("lines %+v", r.Lines)
	switch {
	case c.JSON:
		return writeJSON(out, r)
	case c.CSV != "":
		return writeCSV(out, r, c.CSV)
	case c.HTML:
		return writeHTML(out, r, prev)
	}
	return writeText(out, r)
}

// inputs opens what to read: the files, or stdin.
func inputs(files []string, stdin io.Reader, p *maillog.Parser) ([]*input, error) {
	var ins []*input
	for _, f := range files {
		name, path := f, f
		if f == "-" {
			name, path = "stdin", ""
		}
		in, err := openInput(name, path, stdin, p)
		if err != nil {
			for _, in := range ins {
				in.close()
			}
			return nil, err
		}
		in.whole = true
		ins = append(ins, in)
	}
	orderInputs(ins)
	return ins, nil
}
