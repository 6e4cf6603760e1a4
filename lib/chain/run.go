package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mf/lib/resident"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/supervise"
	"mf/lib/verdict"
)

// Runner runs stages as processes (see proc_linux.go for how each is
// started and ended).
type Runner struct {
	Env     []string // environment of every stage; the envelope is added
	TempDir string   // where a stage's output is spooled ("" = os.TempDir)
	User    *User    // whom stages run as; nil: the bridge's own user

	// mf's own commands run in-process (inproc.go), only while stages
	// run as the bridge's own user: with a separate stage user they are
	// processes like any other, so no stage runs with the bridge's rights.
	Commands map[string]Command // programs run in-process, by base name
	Resident *resident.Set      // what in-process stages keep open (nil: nothing)

	envIdx atomic.Pointer[envIndex] // Env as a map, for in-process stages

	stopOnce sync.Once
	stopCtx  context.Context
	stopAll  context.CancelFunc
}

// User is whom stages run as, when not the bridge's own user.
type User struct {
	Name       string
	Credential *syscall.Credential // uid, gid and supplementary groups
	Home       string              // HOME of stages
}

// LookupUser finds a stage user in the password and group databases.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q, gid %q", name, u.Uid, u.Gid)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil && uint32(g) != c.Gid {
				c.Groups = append(c.Groups, uint32(g))
			}
		}
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	return &User{Name: u.Username, Credential: c, Home: home}, nil
}

func (r *Runner) init() {
	r.stopOnce.Do(func() { r.stopCtx, r.stopAll = context.WithCancel(context.Background()) })
}

// Stop ends every stage the runner is running, and all they started, and
// makes their results and those of any later run a tempfail, whatever
// their on-error says: the bridge calls it at its shutdown deadline, so
// the MTA is told to retry rather than left waiting for a stage.
func (r *Runner) Stop() {
	r.init()
	r.stopAll()
}

// stopped reports whether the run in ctx was ended by Stop or by its
// caller rather than by its own timeout.
func (r *Runner) stopped(ctx context.Context) bool {
	if r.stopCtx.Err() != nil {
		return true
	}
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), errTimeout)
}

var (
	// errStart: the stage could not be started.
	errStart = errors.New("start")
	// errStopped: the stage was ended by Stop or the caller.
	errStopped = errors.New("stopped: the bridge is shutting down")
	// errTimeout is the cause of a stage's own timeout.
	errTimeout = errors.New("stage timeout")
)

// refusedForNow reports whether err is a failure for which the message
// must be tempfailed whatever on-error says: the stage was stopped, or
// the message itself made it impossible to start (its envelope does not
// fit in the environment: E2BIG). Skipping the stage (on-error=accept)
// would let the message through unscanned.
func refusedForNow(err error) bool {
	return errors.Is(err, errStopped) || errors.Is(err, errEnvelopeTooBig) || errors.Is(err, syscall.E2BIG)
}

// startError is why the supervisor could not start the stage, as it
// said, with the errno (0 if none) for errors.Is.
type startError struct {
	text  string
	errno syscall.Errno
}

func (e *startError) Error() string { return e.text }
func (e *startError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}

func sscan(s, format string, a ...any) bool {
	n, err := fmt.Sscanf(s, format, a...)
	return err == nil && n == len(a)
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
	Message  *spool.Message   // the message it wrote (data phase, output stream or message); nil if an in-process stage handed back the one it was given (sameMessage)
	Headers  []string         // fields it asked to add (output=headers)
	Stderr   string           // the end of what it said on stderr
	InProc   bool             // it ran inside the runner's process

	handed      *stream.Stream // the envelope an in-process stage handed back parsed
	sameMessage bool           // and the message it was given, unchanged (stream.MessageTaker)
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
	n, err := msg.Size()
	if err != nil {
		return floor
	}
	return floor + 4*n
}

// Run runs one stage on env (and msg at the data phase). It never fails:
// a stage that cannot be started, times out, is killed or writes what
// cannot be read has failed, and its on-error policy is the verdict.
func (r *Runner) Run(ctx context.Context, st *Stage, env *stream.Envelope, msg *spool.Message) *Result {
	start := time.Now()
	res := &Result{Stage: st, Phase: env.Phase, Exit: -1}
	r.init()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.stopCtx, cancel)()
	err := errStopped
	if ctx.Err() == nil && r.stopCtx.Err() == nil {
		err = r.run(ctx, st, env, msg, res, true)
		if errors.Is(err, errNotTaken) {
			err = r.run(ctx, st, env, msg, res, false)
		}
	}
	if err != nil {
		if res.Message != nil {
			res.Message.Close()
		}
		res.Err, res.Env, res.Message, res.Headers = err, nil, nil, nil
		res.Verdict = st.onError()
		if refusedForNow(err) {
			res.Verdict = verdict.New(verdict.Tempfail, st.reply(verdict.Tempfail))
		}
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

// run runs st as a process, through the resident supervisor if there is
// one and resident is true, or in-process where it is one of mf's own.
func (r *Runner) run(ctx context.Context, st *Stage, env *stream.Envelope, msg *spool.Message, res *Result, resident bool) error {
	if cmd := r.command(st); cmd != nil && r.InProcess(st) {
		return r.runCommand(ctx, cmd, st, env, msg, res)
	}
	environ, err := r.environ(st, env)
	if err != nil {
		return err
	}
	// exec.Command finds the program as it always did, on the bridge's
	// PATH; the supervisor runs what it found.
	found := exec.Command(st.Argv[0])
	if found.Err != nil {
		return fmt.Errorf("%w: %w", errStart, found.Err)
	}
	life, err := lifelineReader()
	if err != nil {
		return fmt.Errorf("lifeline: %w", err)
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
	status, statusW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		feed.Close()
		return err
	}
	defer status.Close()
	ctx, cancel := context.WithTimeoutCause(ctx, st.TimeoutAt(env.Phase), errTimeout)
	defer cancel()
	var cred *syscall.Credential
	if r.User != nil {
		cred = r.User.Credential
	}
	args := supervise.Args(uint64(outputLimit(msg)), cred, found.Path, st.Argv)
	if r.User != nil {
		// A stage started by a bridge that was root does not keep root's
		// HOME; later values win (os/exec).
		environ = append(environ, "HOME="+r.User.Home, "USER="+r.User.Name, "LOGNAME="+r.User.Name)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		feed.Close()
		statusW.Close()
		return err
	}
	defer errR.Close()
	if r.User != nil {
		// Like every descriptor the bridge hands a stage, the pipe is
		// the bridge user's, mode 0600: no other stage may open it
		// through /proc. Others may write it (not read), so that a
		// stage of another user can reopen its own /dev/stderr, which
		// scripts often do; a stray line in another stage's log is all
		// that allows.
		errW.Chmod(0o622)
	}
	var stderr tail
	copied := make(chan struct{})
	go func() {
		io.Copy(&stderr, errR)
		close(copied)
	}()

	// wait waits for the supervisor, and returns what it said on the
	// status pipe and how it ended.
	var wait func() (said []byte, ended string, err error)
	if run, ok := launchResident(resident, args, environ, [3]*os.File{stdin, out, errW}, statusW, cred != nil); ok {
		wait = func() ([]byte, string, error) { return run.wait(ctx, status) }
	} else {
		// The supervisor as it was when the bridge started, even if
		// replaced on disk since (supervisorPath).
		cmd := exec.CommandContext(ctx, supervisorPath())
		cmd.Args, cmd.Env = args, environ
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, errW
		cmd.ExtraFiles = []*os.File{life, statusW} // supervise.LifelineFd, StatusFd
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// The supervisor ends the stage and all it started, then itself.
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 2 * time.Second
		err = start(cmd, cred != nil)
		wait = func() ([]byte, string, error) {
			err := cmd.Wait()
			if cmd.ProcessState == nil {
				return nil, "", err
			}
			said, _ := io.ReadAll(io.LimitReader(status, 4096))
			return said, cmd.ProcessState.String(), nil
		}
	}
	stdin.Close()
	statusW.Close()
	errW.Close()
	if err != nil {
		feed.Close()
		if r.stopped(ctx) {
			return errStopped
		}
		return fmt.Errorf("%w: %w", errStart, err)
	}
	fed := make(chan error, 1)
	go func() {
		err := r.feed(feed, st, env, msg)
		feed.Close()
		fed <- err
	}()
	said, ended, waitErr := wait()
	feedErr := <-fed
	// The supervisor ended all that held the pipe; should it have been
	// killed before it could, what is left is not waited for.
	errR.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	<-copied
	res.Stderr = strings.TrimSpace(stderr.String())

	if r.stopped(ctx) {
		return errStopped
	}
	if ctx.Err() != nil {
		return fmt.Errorf("timeout after %s", st.TimeoutAt(env.Phase))
	}
	if waitErr != nil {
		return fmt.Errorf("wait: %w", waitErr)
	}
	var code, errno int
	var text string
	switch {
	case sscan(string(said), "exit %d", &code):
	case sscan(string(said), "signal %d", &code):
		return fmt.Errorf("killed by signal %d (%s)", code, syscall.Signal(code))
	case sscan(string(said), "start %d", &errno):
		_, text, _ = strings.Cut(string(said)[len("start "):], " ")
		return fmt.Errorf("%w: %w", errStart, &startError{text, syscall.Errno(errno)})
	default:
		return fmt.Errorf("the stage's supervisor ended without a word: %s", ended)
	}
	if feedErr != nil && !errors.Is(feedErr, syscall.EPIPE) {
		return fmt.Errorf("stdin: %w", feedErr)
	}
	res.Exit = code
	fo, err := newFileOutput(out)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	keep, err = r.outcome(st, env, fo, res)
	return err
}

// output is what a stage wrote on stdout: a process's file
// (fileOutput), or an in-process stage's spool.Buffer, in memory while it
// is small.
type output interface {
	io.ReaderAt
	Len() int64
	// Message is what was written from offset on, for a message that
	// goes on; closing it lets go of the output.
	Message(offset int64) *spool.Message
}

// whole reads all of out from its first byte.
func whole(out output) io.Reader { return io.NewSectionReader(out, 0, out.Len()) }

// fileOutput is a process's stdout, spooled to a file, and its length
// once the process has ended.
type fileOutput struct {
	f *os.File
	n int64
}

func newFileOutput(f *os.File) (fileOutput, error) {
	st, err := f.Stat()
	if err != nil {
		return fileOutput{}, err
	}
	return fileOutput{f, st.Size()}, nil
}

func (o fileOutput) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o fileOutput) Len() int64                              { return o.n }
func (o fileOutput) Message(offset int64) *spool.Message {
	return &spool.Message{File: o.f, Offset: offset}
}

// outcome reads what a stage that exited with res.Exit said: the verdict
// its exit code means, and its output. keep says whether out holds a
// message the result points into.
func (r *Runner) outcome(st *Stage, env *stream.Envelope, out output, res *Result) (keep bool, err error) {
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
		if out.Len() == 0 && !refused {
			return false, errors.New("output: no message on stdout (output=message)")
		}
		res.Message, keep = out.Message(0), true
	case HeaderOutput:
		fields, err := readHeaders(whole(out))
		if err != nil {
			return false, fmt.Errorf("output: %w", err)
		}
		res.Headers = fields
	}
	return keep, nil
}

// feed writes the stage's stdin: the stream, or the bare message. The
// envelope block goes in one write, the message through spool.Copy's
// kept buffer: a buffer of its own for each run was most of what a chain
// of processes allocated per message.
func (r *Runner) feed(w io.Writer, st *Stage, env *stream.Envelope, msg *spool.Message) error {
	if st.Input == StreamInput {
		if err := stream.Write(w, env); err != nil {
			return err
		}
	}
	if msg == nil || !env.HasMessage() {
		return nil
	}
	mr, err := msg.Reader()
	if err != nil {
		return err
	}
	_, err = spool.Copy(w, mr)
	return err
}

// readStream reads what a stage with output=stream wrote.
func (r *Runner) readStream(out output, env *stream.Envelope, res *Result) error {
	s := res.handed
	if s == nil || !begins(out, s.Raw) {
		// Not handed back, or not what was written after all: parsed
		// from what was.
		var err error
		if s, err = stream.Read(whole(out), stream.StreamInput, stream.Envelope{}); err != nil {
			return err
		}
		defer s.Close() // the envelope is read; the message is taken from out
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
	// What a stage leaves out is never taken for a change: dropping the
	// message or every recipient is a decision (discard), not a side
	// effect of fields it did not write.
	decided := res.Verdict.Action.Final()
	if !decided && !env.Phase.Before(stream.Mail) && !hasField(s.Raw, "Mf-Mail-From") {
		return errors.New("stream without Mf-Mail-From: the sender is not known")
	}
	if !decided && len(env.Rcpts) > 0 && len(s.Env.Rcpts) == 0 {
		return errors.New("stream without recipients: a stage drops a message by exiting 99 with Mf-Verdict: discard")
	}
	res.Env = &s.Env
	if res.sameMessage && s == res.handed {
		return nil // the message goes on as it was: the chain keeps it
	}
	if env.HasMessage() {
		res.Message = out.Message(int64(len(s.Raw)))
		keeps := !res.Verdict.Action.Refuses() && res.Verdict.Action != verdict.Discard // the message goes on
		if n, err := res.Message.Size(); err != nil || n == 0 && keeps {
			res.Message = nil
			return errors.New("stream without a message after the envelope (output=stream at data writes the message on)")
		}
	}
	return nil
}

// begins reports whether f starts with raw.
func begins(f io.ReaderAt, raw []byte) bool {
	b := make([]byte, len(raw))
	n, _ := f.ReadAt(b, 0)
	return n == len(raw) && bytes.Equal(b, raw)
}

// hasField reports whether an envelope block has a field called name.
func hasField(raw []byte, name string) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), name) {
			return true
		}
	}
	return false
}

func readHeaders(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxHeaderOutput+1))
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
	fields, err := stream.ParseFields(append(b, "\n\n"...))
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

// Bounds of the envelope in the environment. exec refuses one variable
// past 128 KiB and all of them past a quarter of the stack limit (E2BIG),
// and a stage that cannot start is no scan. Through SMTP no single value
// comes near maxEnvValue (a command line is at most 512 octets, Postfix
// and sendmail take 2048); the recipients of one transaction can: 1000
// of 170 bytes are 170 KB. So RECIPIENTS holds whole recipients, in order,
// while all the envelope variables fit in maxEnvelopeVars;
// RECIPIENTS_TRUNCATED=1 then says some were left out, RECIPIENT_COUNT
// says how many there are, and the stream (input=stream) has them all.
const (
	maxEnvValue     = 16 << 10
	maxEnvelopeVars = 64 << 10
)

// errEnvelopeTooBig: a value of the envelope is longer than any SMTP
// transaction carries, so it cannot be put in the environment. Only a
// hand-made stream can do this; the message is refused for now.
var errEnvelopeTooBig = errors.New("the envelope does not fit in the environment")

// envVars gives the envelope to programs that read no stream, in qmail's
// names where qmail has one. Values are encoded as in the stream.
func envVars(env *stream.Envelope) ([]string, error) {
	cur := env.CurrentRcpts()
	first := ""
	if len(cur) > 0 {
		first = cur[0]
	}
	var vars []string
	size := 0
	add := func(k, v string) {
		vars = append(vars, k+"="+v)
		size += len(k) + len(v) + 2 // with "=" and the NUL
	}
	for _, kv := range [][2]string{
		{"SMTP_PHASE", string(env.Phase)},
		{"QUEUE_ID", env.QueueID},
		{"TCPREMOTEIP", env.ClientAddr},
		{"TCPREMOTEHOST", env.ClientName},
		{"HELO", env.Helo},
		{"AUTH_USER", env.AuthUser},
		{"SENDER", env.MailFrom},
		{"RECIPIENT", first},
	} {
		v := stream.Encode(kv[1])
		if len(v) > maxEnvValue {
			return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", errEnvelopeTooBig, kv[0], len(v), maxEnvValue)
		}
		add(kv[0], v)
	}
	add("RECIPIENT_COUNT", strconv.Itoa(len(env.Rcpts)))
	// Room for RECIPIENTS= and RECIPIENTS_TRUNCATED=1.
	room := maxEnvelopeVars - size - len("RECIPIENTS=") - len("RECIPIENTS_TRUNCATED=1") - 2
	var b strings.Builder
	cut := false
	for _, r := range env.Rcpts {
		e := stream.Encode(r)
		n := len(e)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > room {
			cut = true
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n') // one a line: a value never holds a LF
		}
		b.WriteString(e)
	}
	add("RECIPIENTS", b.String())
	if cut {
		add("RECIPIENTS_TRUNCATED", "1")
	}
	return vars, nil
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
