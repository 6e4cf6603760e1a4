package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mf/lib/scan/outcome"
)

// passedOn are the variables of mf-scan's own environment a program
// engine gets: those mf-bridge passes to a stage (mf-bridge(8)), looked
// up in the command's environment, which inside mf-bridge is the
// stage's and not the bridge's.
var passedOn = []string{"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_COLLATE", "LC_NUMERIC", "LC_TIME", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME"}

func (s *Scanner) environ() []string {
	var env []string
	for _, k := range passedOn {
		if s.LookupEnv == nil {
			break
		}
		if v, ok := s.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// MaxProgramOutput bounds what a program engine may print.
const MaxProgramOutput = 64 << 10

func (s *Scanner) program(ctx context.Context, e *Engine, m *Msg, sum string) *Result {
	start := time.Now()
	res := &Result{Engine: e}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, "", sum)
	if !ok {
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cctx, cancel := context.WithTimeout(ctx, e.Timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, e.Argv[0], e.Argv[1:]...)
		cmd.Stdin = r
		var out limited
		cmd.Stdout = &out
		var errb limited
		cmd.Stderr = &errb
		// A group of its own, ended whole at the timeout: what it
		// leaves behind goes with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		cmd.Env = append(s.environ(), "SENDER="+m.Env.MailFrom, "TCPREMOTEIP="+m.Env.ClientAddr,
			"MF_QUEUE_ID="+m.Env.QueueID, "MF_SIZE="+strconv.FormatInt(m.Size, 10))
		if rc := m.Env.CurrentRcpts(); len(rc) > 0 {
			cmd.Env = append(cmd.Env, "RECIPIENT="+rc[0])
		}
		run := s.Exec
		if run == nil {
			run = (*exec.Cmd).Run
		}
		err = run(cmd)
		var ee *exec.ExitError
		switch {
		case cctx.Err() == context.DeadlineExceeded:
			return s.fail(res, fmt.Errorf("timed out after %s", e.Timeout))
		case errors.As(err, &ee) && ee.ExitCode() >= 0:
		case err != nil:
			return s.fail(res, err)
		}
		if out.over {
			return s.fail(res, fmt.Errorf("printed more than %d bytes", MaxProgramOutput))
		}
		c = &cached{Exit: cmd.ProcessState.ExitCode()}
		for _, l := range strings.Split(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n") {
			if l == "" {
				continue
			}
			name, _, ok := strings.Cut(l, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return s.fail(res, fmt.Errorf("printed %q, not a header field", clean(l)))
			}
			c.Fields = append(c.Fields, clean(l))
		}
		if _, known := e.Exits[c.Exit]; known {
			s.store(ctx, e, "", sum, c)
		} else if msg := strings.TrimSpace(errb.String()); msg != "" {
			s.Logf("engine %s: %s", e.Name, clean(msg))
		}
	}
	res.Cached = ok
	o, known := e.Exits[c.Exit]
	if !known {
		return s.fail(res, fmt.Errorf("exit %d, which no %d= option maps", c.Exit, c.Exit))
	}
	res.Status, res.Detail = "exit", strconv.Itoa(c.Exit)
	if o.Action == outcome.Continue {
		res.Status = "clean"
	}
	res.Outcome = o
	res.Headers = c.Fields
	return res
}

// limited keeps the first MaxProgramOutput bytes written to it.
type limited struct {
	bytes.Buffer
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if l.Len()+len(p) > MaxProgramOutput {
		l.over = true
		l.Buffer.Write(p[:max(0, MaxProgramOutput-l.Len())])
		return len(p), nil
	}
	return l.Buffer.Write(p)
}
