package bridge

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"mf/lib/chain"
	"mf/lib/decision"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// record is one decision: a message at end of data, or a transaction or
// recipient refused before it.
type record struct {
	phase   string
	env     stream.Envelope
	size    int64
	start   time.Time
	results []*chain.Result
	verdict verdict.Verdict
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *record) json(host string, now time.Time) decision.Record {
	j := decision.Record{
		Time: now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), Host: host,
		QueueID: r.env.QueueID, Phase: r.phase,
		ClientAddr: r.env.ClientAddr, ClientName: r.env.ClientName, Helo: r.env.Helo,
		AuthUser: r.env.AuthUser, Rcpts: r.env.Rcpts, Size: r.size,
		Action: r.verdict.Action.String(), MS: ms(now.Sub(r.start)),
	}
	if r.phase == "mail" || r.phase == "rcpt" || r.phase == "data" {
		from := r.env.MailFrom
		j.MailFrom = &from
	}
	if r.verdict.Action.Refuses() || r.verdict.Action == verdict.Quarantine {
		j.Reply = replyOf(r.verdict)
	}
	for _, res := range r.results {
		s := decision.Stage{Name: res.Stage.Name, Phase: string(res.Phase), Action: res.Verdict.Action.String(), Exit: res.Exit, MS: ms(res.Duration)}
		if res.Verdict.Action.Refuses() {
			s.Reply = res.Verdict.Reply.String()
		}
		if res.Err != nil {
			s.Error = res.Err.Error()
		}
		s.Trace, s.Stderr = TraceOf(res), LastLine(res.Stderr)
		j.Stages = append(j.Stages, s)
	}
	return j
}

func replyOf(v verdict.Verdict) string {
	if v.Action == verdict.Quarantine {
		return v.Reply.Text
	}
	return v.Reply.String()
}

// Recorder appends decision records to a file, one JSON line each.
type Recorder struct {
	mu   sync.Mutex
	path string
	w    io.Writer
	f    *os.File
	host string
}

// OpenRecorder opens the decision log: a file, "-" for stdout, or ""
// for none.
func OpenRecorder(path string, stdout io.Writer) (*Recorder, error) {
	host, _ := os.Hostname()
	r := &Recorder{path: path, host: host}
	switch path {
	case "":
		return r, nil
	case "-":
		r.w = stdout
		return r, nil
	}
	return r, r.Reopen()
}

// Reopen opens the file anew, after it was rotated away.
func (r *Recorder) Reopen() error {
	if r == nil || r.path == "" || r.path == "-" {
		return nil
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f, r.w = f, f
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (r *Recorder) write(j *decision.Record) error {
	if r == nil || r.w == nil {
		return nil
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.w.Write(b) // one write a line: lines never interleave
	return err
}

// Close closes the file.
func (r *Recorder) Close() error {
	if r != nil && r.f != nil {
		return r.f.Close()
	}
	return nil
}

func (c *Config) record(r *record) {
	j := r.json(c.Records.hostname(), time.Now())
	if err := c.Records.write(&j); err != nil {
		c.Log.Errorf("decision log: %v", err)
	}
	if c.Observe != nil {
		c.Observe(&j)
	}
	c.logRecord(r)
}

func (r *Recorder) hostname() string {
	if r == nil {
		return ""
	}
	return r.host
}

// logRecord is the one info line of each decision, accepted mail too:
// its outcome, and the stage that decided and why.
func (c *Config) logRecord(r *record) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s", queueID(r.env), r.phase, r.verdict.Action)
	if r.verdict.Action.Refuses() || r.verdict.Action == verdict.Quarantine {
		fmt.Fprintf(&b, " %q", replyOf(r.verdict))
	}
	if r.phase != "connect" && r.phase != "helo" {
		fmt.Fprintf(&b, " from=<%s> rcpts=%d", stream.Encode(r.env.MailFrom), len(r.env.Rcpts))
	}
	if r.env.ClientAddr != "" {
		fmt.Fprintf(&b, " client=%s", r.env.ClientAddr)
	}
	for _, res := range r.results {
		if res.Verdict.Action.Final() || res.Err != nil {
			fmt.Fprintf(&b, " stage=%s:%s", res.Stage.Name, res.Verdict.Action)
			if res.Err != nil {
				fmt.Fprintf(&b, "(failed: %v)", res.Err)
			}
		}
	}
	fmt.Fprintf(&b, " %.1fms", ms(time.Since(r.start)))
	c.Log.Infof("%s", b.String())
}

// logResult logs a stage that failed or decided.
func (c *Config) logResult(env stream.Envelope, r *chain.Result) {
	id := queueID(env)
	switch {
	case r.Err != nil:
		msg := fmt.Sprintf("%s: stage %s at %s failed: %v; on-error gives %s", id, r.Stage.Name, r.Phase, r.Err, r.Verdict.Action)
		if r.Stderr != "" {
			msg += "; it said: " + LastLine(r.Stderr)
		}
		c.Log.Warnf("%s", msg)
	case r.Verdict.Action.Final():
		msg := fmt.Sprintf("%s: stage %s at %s: %s", id, r.Stage.Name, r.Phase, r.Verdict)
		if r.Stderr != "" {
			msg += "; " + LastLine(r.Stderr)
		}
		c.Log.Infof("%s", msg)
	default:
		c.Log.Debugf("%s: stage %s at %s: %s in %s", id, r.Stage.Name, r.Phase, r.Verdict, r.Duration)
	}
}

// TraceOf is the Mf-Trace line a stage added to the stream it wrote: the
// last one that starts with its program's name (a stage that copies the
// stream on, such as sed, adds none of its own).
func TraceOf(r *chain.Result) string {
	if r.Env == nil || len(r.Stage.Argv) == 0 {
		return ""
	}
	prog := filepath.Base(r.Stage.Argv[0])
	for i := len(r.Env.Trace) - 1; i >= 0; i-- {
		if t := r.Env.Trace[i]; strings.HasPrefix(t, prog+" ") {
			return t
		}
	}
	return ""
}

// LastLine is the last line of what a stage said on stderr.
func LastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
