package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	if refused(r.verdict) || r.verdict.Action == verdict.Quarantine {
		j.Reply = replyOf(r.verdict)
	}
	for _, res := range r.results {
		s := decision.Stage{Name: res.Stage.Name, Phase: string(res.Phase), Action: res.Verdict.Action.String(), Exit: res.Exit, MS: ms(res.Duration)}
		if refused(res.Verdict) {
			s.Reply = res.Verdict.Reply.String()
		}
		if res.Err != nil {
			s.Error = res.Err.Error()
		}
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

// recorder appends decision records to a file, one JSON line each.
type recorder struct {
	mu   sync.Mutex
	path string
	w    io.Writer
	f    *os.File
	host string
}

func openRecorder(path string, stdout io.Writer) (*recorder, error) {
	host, _ := os.Hostname()
	r := &recorder{path: path, host: host}
	switch path {
	case "":
		return r, nil
	case "-":
		r.w = stdout
		return r, nil
	}
	return r, r.reopen()
}

// reopen opens the file anew, after it was rotated away.
func (r *recorder) reopen() error {
	if r.path == "" || r.path == "-" {
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

func (r *recorder) write(rec *record) error {
	if r == nil || r.w == nil {
		return nil
	}
	b, err := json.Marshal(rec.json(r.host, time.Now()))
	if err != nil {
		return err
	}
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.w.Write(b) // one write a line: lines never interleave
	return err
}

func (r *recorder) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}
