// Package chain runs the stages configured for an SMTP phase, one after
// the other, until one decides, and turns what each said into a verdict.
package chain

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-shellwords"

	"mf/lib/name"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Input is what a stage reads on stdin.
type Input int

const (
	StreamInput  Input = iota // the mf stream: envelope block, then the message
	MessageInput              // the bare message, the envelope in the environment
)

var inputNames = []string{"stream", "message"}

// Output is what a stage writes on stdout and the bridge reads back.
type Output int

const (
	StreamOutput  Output = iota // the mf stream, possibly changed
	MessageOutput               // the message, possibly changed
	HeaderOutput                // header fields to add, "Name: value" lines
	ExitOutput                  // nothing: the exit code says it all
)

var outputNames = []string{"stream", "message", "headers", "exit"}

// Error is an exit-code override meaning "the stage failed"; it is never
// a verdict, so on-error decides.
const Error verdict.Action = -1

// Default timeouts, below the MTAs' own: sendmail waits 10 s for each
// reply before DATA (T=R:10s) and tempfails the rest of the session when
// a milter is late, so a stage that took as long would lose that race;
// the content phase gets less than Postfix's and sendmail's 5 minutes.
const (
	EnvelopeTimeout = 8 * time.Second
	DataTimeout     = 120 * time.Second
)

// Stage is one program of the chain and how to run it.
type Stage struct {
	Name    string
	Phases  []stream.Phase // SMTP phases it runs at
	Argv    []string       // run without a shell
	Timeout time.Duration
	OnError verdict.Action // Tempfail, Accept or Reject
	Input   Input
	Output  Output
	Exits   map[int]verdict.Action // exit-code overrides
	Reply   *verdict.Reply         // reply of an override's reject or tempfail
	Always  bool                   // runs even after a decision at its phase, unheeded
	Exec    bool                   // exec=yes: a process even when the program is one the runner has in-process
	Line    string                 // as configured, for messages
}

// At reports whether the stage runs at phase.
func (s *Stage) At(phase stream.Phase) bool {
	for _, p := range s.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// TimeoutAt is the stage's time limit at phase.
func (s *Stage) TimeoutAt(phase stream.Phase) time.Duration {
	switch {
	case s.Timeout > 0:
		return s.Timeout
	case phase == stream.Data:
		return DataTimeout
	}
	return EnvelopeTimeout
}

// Syntax is the stage line's form, for error messages and --help.
const Syntax = "NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]"

// Parse reads a stage line:
//
//	NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]
//
// Words are split as a shell would split them (quotes, backslashes), but
// nothing is expanded and no shell ever runs: a pipe or redirection is an
// error. Options: timeout=DURATION, on-error=tempfail|accept|reject,
// input=stream|message, output=stream|message|headers|exit, reply="CODE
// X.Y.Z TEXT", always=yes (run even after a decision, to clean up; what it
// says then is not heeded), exec=yes (a process of its own even for one
// of mf's commands, which the runner may otherwise run inside its own
// process), and N=ACTION to override what exit code N means.
func Parse(line string) (*Stage, error) {
	p := shellwords.NewParser()
	words, err := p.Parse(line)
	if err != nil {
		return nil, err
	}
	if p.Position >= 0 {
		return nil, fmt.Errorf("%q at column %d: stages run without a shell, so there are no pipes, redirections or lists (put them in a script)", line[p.Position:p.Position+1], p.Position+1)
	}
	if len(words) < 3 {
		return nil, fmt.Errorf("want %s", Syntax)
	}
	s := &Stage{Name: words[0], OnError: verdict.Tempfail, Line: line}
	if err := name.Valid(s.Name); err != nil {
		return nil, fmt.Errorf("stage %w", err)
	}
	for _, w := range strings.Split(words[1], ",") {
		ph, err := stream.ParsePhase(w)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w, joined by commas", s.Name, err)
		}
		if s.At(ph) {
			return nil, fmt.Errorf("stage %s: phase %s given twice", s.Name, ph)
		}
		s.Phases = append(s.Phases, ph)
	}
	rest := words[2:]
	for len(rest) > 0 {
		w := rest[0]
		if w == "--" {
			rest = rest[1:]
			break
		}
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			break
		}
		if err := s.option(k, v); err != nil {
			return nil, fmt.Errorf("stage %s: %s: %w", s.Name, w, err)
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("stage %s: no program (want %s)", s.Name, Syntax)
	}
	if rest[0] == "" {
		return nil, fmt.Errorf("stage %s: empty program name", s.Name)
	}
	s.Argv = rest
	if s.Output == HeaderOutput || s.Output == StreamOutput {
		if s.Input == MessageInput && s.Output == StreamOutput {
			return nil, fmt.Errorf("stage %s: output=stream needs input=stream (a program given a bare message cannot write a stream); use output=message, headers or exit", s.Name)
		}
	}
	if s.Output == MessageOutput && !s.onlyData() {
		return nil, fmt.Errorf("stage %s: output=message needs the data phase alone: before DATA there is no message", s.Name)
	}
	return s, nil
}

func (s *Stage) onlyData() bool { return len(s.Phases) == 1 && s.Phases[0] == stream.Data }

func (s *Stage) option(k, v string) error {
	if code, err := strconv.Atoi(k); err == nil {
		if code < 0 || code > 255 {
			return errors.New("exit codes run from 0 to 255")
		}
		a, err := exitAction(v)
		if err != nil {
			return err
		}
		if s.Exits == nil {
			s.Exits = map[int]verdict.Action{}
		}
		if _, dup := s.Exits[code]; dup {
			return fmt.Errorf("exit code %d given twice", code)
		}
		s.Exits[code] = a
		return nil
	}
	switch k {
	case "timeout":
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s or 2m")
		}
		s.Timeout = d
	case "on-error":
		a, err := verdict.ParseAction(v)
		if err != nil || (a != verdict.Tempfail && a != verdict.Accept && a != verdict.Reject) {
			return errors.New("want tempfail, accept or reject")
		}
		s.OnError = a
	case "input":
		i := slices.Index(inputNames, v)
		if i < 0 {
			return fmt.Errorf("want %s", strings.Join(inputNames, " or "))
		}
		s.Input = Input(i)
	case "output":
		i := slices.Index(outputNames, v)
		if i < 0 {
			return fmt.Errorf("want %s", strings.Join(outputNames, ", "))
		}
		s.Output = Output(i)
	case "always", "exec":
		var b bool
		switch v {
		case "yes":
			b = true
		case "no":
		default:
			return errors.New("want yes or no")
		}
		if k == "always" {
			s.Always = b
		} else {
			s.Exec = b
		}
	case "reply":
		r, err := verdict.ParseReply(v)
		if err != nil {
			return err
		}
		if r.Code/100 == 2 {
			return errors.New("a reply for a refusal needs a 4xx or 5xx code")
		}
		s.Reply = &r
	default:
		return fmt.Errorf("unknown option %q (want timeout, on-error, input, output, reply, always, exec or an exit code)", k)
	}
	return nil
}

func exitAction(v string) (verdict.Action, error) {
	if v == "error" {
		return Error, nil
	}
	a, err := verdict.ParseAction(v)
	if err != nil {
		return 0, fmt.Errorf("unknown action %q (want continue, accept, discard, quarantine, reject, tempfail or error)", v)
	}
	return a, nil
}
