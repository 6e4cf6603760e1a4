package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mf/lib/cli"
	"mf/lib/qmail"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// qfilterCmd runs a filter written for qmail-qfilter as a stage of any
// chain, under any MTA: the message on its stdin and the new one on its
// stdout, the envelope in qmail-queue's format on fd 3 and a changed one
// on fd 4, an error text on fd 5; exit 0 passes, 99 drops the message
// (discard), 31 and the other codes qmail calls permanent (11-40) reject,
// anything else is a temporary refusal.
type qfilterCmd struct {
	Input   string        `enum:"message,stream,auto" default:"message" help:"What stdin holds: stream (as mf-bridge gives it, MF_INPUT=stream), or a bare message with --from and --rcpt, to try a filter by hand."`
	From    string        `group:"envelope" placeholder:"ADDR" help:"Envelope sender of a bare message."`
	Rcpt    []string      `group:"envelope" sep:"none" placeholder:"ADDR" help:"Envelope recipient of a bare message; repeat for several."`
	Timeout time.Duration `default:"110s" help:"Stop the filter after this long (a temporary refusal); below the stage's own timeout."`
	Filter  []string      `arg:"" passthrough:"" help:"The filter and its arguments."`
}

// Run is the stage: exit status and output as every mf stage has them.
func (cmd *qfilterCmd) Run(env *cli.Env, c *root) error {
	code, err := cmd.run(env.Ctx, env.Stdin, env.Stdout, env.Stderr, c.SpoolDir)
	env.Code = code
	return err
}

func (cmd *qfilterCmd) run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, dir string) (int, error) {
	argv := cmd.Filter
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return 0, errors.New("qfilter: no filter to run")
	}
	kind := map[string]stream.Input{"stream": stream.StreamInput, "auto": stream.AutoInput}[cmd.Input] // else MessageInput
	bare := stream.Envelope{Phase: stream.Data, MailFrom: stream.Unbracket(cmd.From)}
	for _, r := range cmd.Rcpt {
		bare.Rcpts = append(bare.Rcpts, stream.Unbracket(r))
	}
	s, err := stream.Read(stdin, kind, bare)
	if err != nil {
		return 0, fmt.Errorf("stdin: %w", err)
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	if s.Final() || !s.Env.HasMessage() {
		// Decided upstream, or before the message: a qmail-qfilter
		// filter only ever sees a whole message.
		if err := s.WriteEnvelope(out); err != nil {
			return 0, err
		}
		if _, err := io.Copy(out, s.Message); err != nil {
			return 0, err
		}
		code := verdict.ExitContinue
		if s.Final() {
			code = s.Env.Verdict.ExitCode()
		}
		return code, out.Flush()
	}
	start := time.Now()
	res, err := runQfilter(ctx, argv, cmd.Timeout, s, dir, stderr)
	if err != nil {
		return 0, err
	}
	defer res.msg.Close()
	env := s.Env
	env.Trace = append(env.Trace, fmt.Sprintf("qfilter %s exit=%d %.1fms", res.verdict.Action, res.exit, time.Since(start).Seconds()*1000))
	if res.verdict.Action.Final() {
		v := res.verdict
		env.Verdict = &v
	}
	if res.env != nil {
		env.MailFrom, env.Rcpts = res.env.Sender, res.env.Rcpts
	}
	if err := stream.Write(out, &env); err != nil {
		return 0, err
	}
	if _, err := io.Copy(out, res.msg); err != nil {
		return 0, err
	}
	return res.verdict.ExitCode(), out.Flush()
}

type qfilterResult struct {
	verdict verdict.Verdict
	exit    int
	env     *qmail.Envelope // nil when the filter wrote none on fd 4
	msg     *os.File        // the message to pass on, at its first byte
}

// runQfilter runs the filter as qmail-qfilter does: the message spooled
// on fd 0, the envelope on fd 3, files for fd 1, 4 and 5, and its
// environment (ENVSENDER, NUMRCPTS, RCPTS).
func runQfilter(ctx context.Context, argv []string, timeout time.Duration, s *stream.Stream, dir string, stderr io.Writer) (*qfilterResult, error) {
	in, err := spool.Create(dir, "mf-qf-in-*")
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if _, err := io.Copy(in, s.Message); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	qenv := &qmail.Envelope{Sender: s.Env.MailFrom, Rcpts: s.Env.Rcpts}
	envIn, err := spool.Create(dir, "mf-qf-env-*")
	if err != nil {
		return nil, err
	}
	defer envIn.Close()
	envIn.Write(qenv.Bytes())
	outs := make([]*os.File, 3) // stdout, fd 4, fd 5
	for i := range outs {
		if outs[i], err = spool.Create(dir, "mf-qf-out-*"); err != nil {
			return nil, err
		}
	}
	defer outs[1].Close()
	defer outs[2].Close()
	keep := false
	defer func() {
		if !keep {
			outs[0].Close()
		}
	}()
	for _, f := range []*os.File{in, envIn} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = in, outs[0], stderr
	c.ExtraFiles = []*os.File{envIn, outs[1], outs[2]} // fd 3, 4, 5
	c.Env = append(os.Environ(),
		"ENVSENDER="+s.Env.MailFrom,
		"NUMRCPTS="+strconv.Itoa(len(s.Env.Rcpts)),
		"RCPTS="+strings.Join(s.Env.Rcpts, "\n"))
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	err = c.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("qfilter %s: timeout after %s", argv[0], timeout)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("qfilter %s: %w", argv[0], err)
	}
	if ee != nil && ee.ExitCode() < 0 {
		return nil, fmt.Errorf("qfilter %s: %v", argv[0], err)
	}
	res := &qfilterResult{exit: c.ProcessState.ExitCode()}
	text, _ := io.ReadAll(io.NewSectionReader(outs[2], 0, qmail.MaxCustom))
	switch code := res.exit; {
	case code == 0:
		res.verdict = verdict.Verdict{Action: verdict.Continue}
	case code == 99:
		res.verdict = verdict.Verdict{Action: verdict.Discard}
	default:
		res.verdict = qfilterRefusal(code, text)
	}
	if res.verdict.Action == verdict.Continue {
		// The new envelope, if the filter wrote one on fd 4.
		if st, err := outs[1].Stat(); err == nil && st.Size() > 0 {
			outs[1].Seek(0, io.SeekStart)
			e, err := qmail.ReadEnvelope(outs[1])
			if err != nil {
				return nil, fmt.Errorf("qfilter %s: envelope on fd 4: %w", argv[0], err)
			}
			res.env = e
		}
		st, err := outs[0].Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() == 0 {
			// A filter that writes nothing would pass on an empty message.
			return nil, fmt.Errorf("qfilter %s: exit 0 with no message on stdout", argv[0])
		}
		if _, err := outs[0].Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		res.msg, keep = outs[0], true
		return res, nil
	}
	// Refused or dropped: the message goes on as it came, for the record.
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dup, err := spool.Create(dir, "mf-qf-keep-*")
	if err != nil {
		return nil, err
	}
	io.Copy(dup, in)
	dup.Seek(0, io.SeekStart)
	res.msg = dup
	return res, nil
}

// qfilterRefusal is the verdict for a filter's exit code other than 0
// and 99, with its fd 5 text: a leading D or Z (qmail's custom error
// convention) says permanent or temporary, else the exit code does.
func qfilterRefusal(code int, text []byte) verdict.Verdict {
	t := strings.TrimSpace(string(bytes.ReplaceAll(text, []byte("\n"), []byte(" "))))
	perm := qmail.Permanent(code)
	if len(t) > 1 && (t[0] == 'D' || t[0] == 'Z') {
		perm, t = t[0] == 'D', strings.TrimSpace(t[1:])
	}
	v := verdict.New(verdict.Tempfail, verdict.DefaultTempfail)
	if perm {
		v = verdict.New(verdict.Reject, verdict.DefaultReject)
	}
	if t != "" {
		want := "4"
		if perm {
			want = "5"
		}
		r := verdict.Reply{Code: v.Reply.Code, Text: t}
		// "5.7.1 text" keeps its enhanced status when its class agrees.
		if f, rest, ok := strings.Cut(t, " "); ok && len(f) >= 5 && strings.HasPrefix(f, want+".") && strings.Count(f, ".") == 2 {
			r.Status, r.Text = f, rest
		}
		for _, ch := range r.Text {
			if ch < 0x20 || ch == 0x7f {
				r.Text = strings.Map(func(c rune) rune {
					if c < 0x20 || c == 0x7f {
						return ' '
					}
					return c
				}, r.Text)
				break
			}
		}
		v.Reply = r
	}
	return v
}
