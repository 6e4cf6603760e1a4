package chain

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mf/lib/edit"
	"mf/lib/resident"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// Runner runs stages as processes, or mf's own commands inside its own
// process (inproc.go).
type Runner struct {
	Env     []string // environment of every stage; the envelope is added
	TempDir string   // where a stage's output is spooled ("" = os.TempDir)

	Commands map[string]Command // programs run in-process, by base name
	Resident *resident.Set      // what in-process stages keep open (nil: nothing)
}

// Result is what one stage said at one phase.
type Result struct {
	Stage    *Stage
	Phase    stream.Phase
	Verdict  verdict.Verdict
	Exit     int // -1 when killed or never started
	Duration time.Duration
	Err      error            // the stage failed; Verdict is what on-error chose
	Env      *stream.Envelope // the envelope it wrote (output=stream)
	Message  *spool.Message   // the message it wrote (data phase, output stream or message)
	Headers  []string         // fields it asked to add (output=headers)
	Stderr   string           // the end of what it said on stderr
	InProc   bool             // it ran inside the runner's process
}

// maxStderr is how much of a stage's stderr is kept for the log.
const maxStderr = 2048

// maxHeaderOutput bounds what output=headers may print.
const maxHeaderOutput = 64 << 10

// outputLimit bounds what a stage may write: room for a message several
// times the size of the one it was given (a filter that wraps it as an
// attachment grows it by a third), and 64 MiB besides.
func outputLimit(msg *spool.Message) int64 {
	const floor = 64 << 20
	if msg == nil {
		return floor
	}
	st, err := msg.File.Stat()
	if err != nil {
		return floor
	}
	return floor + 4*(st.Size()-msg.Offset)
}

// Run runs one stage on env (and msg at the data phase). It never fails:
// a stage that cannot be started, times out, is killed or writes what
// cannot be read has failed, and its on-error policy is the verdict.
func (r *Runner) Run(ctx context.Context, st *Stage, env *stream.Envelope, msg *spool.Message) *Result {
	start := time.Now()
	res := &Result{Stage: st, Phase: env.Phase, Exit: -1}
	if err := r.run(ctx, st, env, msg, res); err != nil {
		if res.Message != nil {
			res.Message.File.Close()
		}
		res.Err, res.Env, res.Message, res.Headers = err, nil, nil, nil
		res.Verdict = st.onError()
	}
	res.Duration = time.Since(start)
	return res
}

func (st *Stage) onError() verdict.Verdict {
	switch st.OnError {
	case verdict.Accept:
		return verdict.Verdict{Action: verdict.Continue} // as if the stage were not there
	case verdict.Reject:
		return verdict.New(verdict.Reject, st.reply(verdict.Reject))
	}
	return verdict.New(verdict.Tempfail, st.reply(verdict.Tempfail))
}

// reply is the configured reply for a, or the generic one.
func (st *Stage) reply(a verdict.Action) verdict.Reply {
	def := verdict.DefaultReject
	if a == verdict.Tempfail {
		def = verdict.DefaultTempfail
	}
	if st.Reply != nil && st.Reply.Code/100 == def.Code/100 {
		return *st.Reply
	}
	return def
}

func (r *Runner) run(ctx context.Context, st *Stage, env *stream.Envelope, msg *spool.Message, res *Result) error {
	if cmd := r.command(st); cmd != nil {
		return r.runCommand(ctx, cmd, st, env, msg, res)
	}
	out, err := spool.Create(r.TempDir, "mf-out-*")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			out.Close()
		}
	}()

	stdin, feed, err := os.Pipe()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, st.TimeoutAt(env.Phase))
	defer cancel()
	cmd := exec.CommandContext(ctx, st.Argv[0], st.Argv[1:]...)
	// MF_INPUT tells an mf stage what its stdin is: a bare message is
	// never taken for a stream unless the bridge says so.
	cmd.Env = append(append(append([]string(nil), r.Env...), envVars(env)...), "MF_INPUT="+inputNames[st.Input])
	cmd.Stdin, cmd.Stdout = stdin, out
	var stderr tail
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The whole process group goes, so a shell script's children do not
	// outlive its timeout.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second

	if err := cmd.Start(); err != nil {
		stdin.Close()
		feed.Close()
		return fmt.Errorf("start: %w", err)
	}
	// No file the stage writes, its output among them, may grow past
	// outputLimit: a stage gone wild is stopped (SIGXFSZ) before it fills
	// the spool's disk. Set just after the start, so bounded, not exact.
	lim := uint64(outputLimit(msg))
	unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: lim, Max: lim}, nil)
	stdin.Close()
	fed := make(chan error, 1)
	go func() {
		err := r.feed(feed, st, env, msg)
		feed.Close()
		fed <- err
	}()
	waitErr := cmd.Wait()
	feedErr := <-fed
	res.Stderr = strings.TrimSpace(stderr.String())

	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timeout after %s", st.TimeoutAt(env.Phase))
	}
	ps := cmd.ProcessState
	if ps == nil {
		return fmt.Errorf("wait: %w", waitErr)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	if feedErr != nil && !errors.Is(feedErr, syscall.EPIPE) {
		return fmt.Errorf("stdin: %w", feedErr)
	}
	res.Exit = ps.ExitCode()
	keep, err = r.outcome(st, env, out, res)
	return err
}

// outcome reads what a stage that exited with res.Exit said: the verdict
// its exit code means, and its output. keep says whether out holds a
// message the result points into.
func (r *Runner) outcome(st *Stage, env *stream.Envelope, out *os.File, res *Result) (keep bool, err error) {
	a, ok := st.Exits[res.Exit]
	if !ok {
		a, ok = defaultExit(res.Exit)
	}
	if !ok || a == Error {
		return false, fmt.Errorf("exit %d", res.Exit)
	}
	res.Verdict = verdict.New(a, st.reply(a))
	if a == verdict.Quarantine {
		res.Verdict.Reply.Text = "held by mf stage " + st.Name
	}
	refused := a == verdict.Reject || a == verdict.Tempfail
	switch st.Output {
	case StreamOutput:
		err := r.readStream(out, env, res)
		if err != nil && !refused {
			return false, fmt.Errorf("output: %w", err)
		}
		keep = res.Message != nil
	case MessageOutput:
		st, err := out.Stat()
		if err != nil {
			return false, err
		}
		if st.Size() == 0 && !refused {
			return false, errors.New("output: no message on stdout (output=message)")
		}
		res.Message, keep = &spool.Message{File: out}, true
	case HeaderOutput:
		fields, err := readHeaders(out)
		if err != nil {
			return false, fmt.Errorf("output: %w", err)
		}
		res.Headers = fields
	}
	return keep, nil
}

// feed writes the stage's stdin: the stream, or the bare message.
func (r *Runner) feed(w io.Writer, st *Stage, env *stream.Envelope, msg *spool.Message) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if st.Input == StreamInput {
		if err := stream.Write(bw, env); err != nil {
			return err
		}
	}
	if msg != nil && env.HasMessage() {
		mr, err := msg.Reader()
		if err != nil {
			return err
		}
		if _, err := io.Copy(bw, mr); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// readStream reads what a stage with output=stream wrote.
func (r *Runner) readStream(out *os.File, env *stream.Envelope, res *Result) error {
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s, err := stream.Read(out, stream.StreamInput, stream.Envelope{})
	if err != nil {
		return err
	}
	if s.Env.Phase != env.Phase {
		return fmt.Errorf("stream is for stage %s, not %s", s.Env.Phase, env.Phase)
	}
	if v := s.Env.Verdict; v != nil && v.ExitCode() == res.Verdict.ExitCode() && v.Action.Final() {
		// The stream names the reply, or tells discard and quarantine
		// from accept, which share an exit code.
		res.Verdict = *v
	}
	s.Env.Verdict = nil
	res.Env = &s.Env
	if env.HasMessage() {
		res.Message = &spool.Message{File: out, Offset: int64(len(s.Raw))}
	}
	return nil
}

func readHeaders(f *os.File) ([]string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxHeaderOutput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxHeaderOutput {
		return nil, fmt.Errorf("more than %d bytes of header fields", maxHeaderOutput)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, nil
	}
	fields, err := edit.ReadFields(bufio.NewReader(bytes.NewReader(append(b, "\n\n"...))))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range fields {
		out = append(out, f.Name+": "+f.Value)
	}
	return out, nil
}

func defaultExit(code int) (verdict.Action, bool) {
	switch code {
	case verdict.ExitContinue:
		return verdict.Continue, true
	case verdict.ExitAccept:
		return verdict.Accept, true
	case verdict.ExitReject:
		return verdict.Reject, true
	case verdict.ExitTempfail:
		return verdict.Tempfail, true
	}
	return 0, false
}

// envVars gives the envelope to programs that read no stream, in qmail's
// names where qmail has one. Values are encoded as in the stream.
func envVars(env *stream.Envelope) []string {
	cur := env.CurrentRcpts()
	first := ""
	if len(cur) > 0 {
		first = cur[0]
	}
	enc := func(k, v string) string { return k + "=" + stream.Encode(v) }
	rcpts := make([]string, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rcpts[i] = stream.Encode(r)
	}
	return []string{
		enc("SMTP_PHASE", string(env.Phase)),
		enc("QUEUE_ID", env.QueueID),
		enc("TCPREMOTEIP", env.ClientAddr),
		enc("TCPREMOTEHOST", env.ClientName),
		enc("HELO", env.Helo),
		enc("AUTH_USER", env.AuthUser),
		enc("SENDER", env.MailFrom),
		enc("RECIPIENT", first),
		"RECIPIENTS=" + strings.Join(rcpts, "\n"), // one a line: a value never holds a LF
	}
}

// tail keeps the last maxStderr bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxStderr {
		t.b = append(t.b[:0], t.b[len(t.b)-maxStderr:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
