package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"mf/lib/resident"
	"mf/lib/spool"
	"mf/lib/stream"
)

// Command is an mf command's run function, what its main calls: args
// without the program name, the environment only through lookupEnv, the
// exit status returned. A runner calls it for a stage whose program is
// that command, inside its own process, as if it had started it.
type Command func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int

// command is the in-process Command for st, or nil when st runs as a
// process: exec=yes asks for one, the program is none of r.Commands (by
// its base name), or the runner is root, as no stage ever runs as root.
func (r *Runner) command(st *Stage) Command {
	if st.Exec || len(r.Commands) == 0 || euid() == 0 {
		return nil
	}
	return r.Commands[filepath.Base(st.Argv[0])]
}

// euid is the process's effective user; a variable so that tests run as
// root can run stages in-process too.
var euid = os.Geteuid

// InProcess reports whether st runs inside the runner's process.
func (r *Runner) InProcess(st *Stage) bool { return r.User == nil && r.command(st) != nil }

// environ is a stage's environment: the runner's, the envelope, and
// MF_INPUT saying what stdin is (a bare message is never taken for a
// stream unless the bridge says so).
// An envelope that does not fit in the environment is an error
// (refusedForNow): the stage does not run.
func (r *Runner) environ(st *Stage, env *stream.Envelope) ([]string, error) {
	vars, err := stageVars(st, env)
	if err != nil {
		return nil, err
	}
	return append(append([]string(nil), r.Env...), vars...), nil
}

// stageVars are the variables a stage gets beside the runner's: the
// envelope's, and MF_INPUT.
func stageVars(st *Stage, env *stream.Envelope) ([]string, error) {
	vars, err := envVars(env)
	if err != nil {
		return nil, err
	}
	return append(vars, "MF_INPUT="+inputNames[st.Input]), nil
}

// lookupEnv is an in-process stage's environment, as environ gives it,
// looked up as exec would have it (the last of duplicate names wins):
// the message's own variables first, then the runner's, indexed once.
func (r *Runner) lookupEnv(st *Stage, env *stream.Envelope) (func(string) (string, bool), error) {
	vars, err := stageVars(st, env)
	if err != nil {
		return nil, err
	}
	// The command's parser looks up every MF_ variable a flag reads at
	// every run: those are looked for among the message's own MF_ ones
	// alone (MF_INPUT), not all of them.
	var mf []string
	for _, kv := range vars {
		if strings.HasPrefix(kv, "MF_") {
			mf = append(mf, kv)
		}
	}
	base := r.envIndex()
	return func(k string) (string, bool) {
		own := vars
		if strings.HasPrefix(k, "MF_") {
			own = mf
		}
		for i := len(own) - 1; i >= 0; i-- {
			if kv := own[i]; len(kv) > len(k) && kv[len(k)] == '=' && kv[:len(k)] == k {
				return kv[len(k)+1:], true
			}
		}
		v, ok := base[k]
		return v, ok
	}, nil
}

// envIndex is the runner's environment as a map, made again only when
// Env is another slice (mf-bridge test adds to it before it runs).
func (r *Runner) envIndex() map[string]string {
	if x := r.envIdx.Load(); x != nil && len(x.of) == len(r.Env) && (len(r.Env) == 0 || &x.of[0] == &r.Env[0]) {
		return x.m
	}
	m := make(map[string]string, len(r.Env))
	for _, kv := range r.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	r.envIdx.Store(&envIndex{r.Env, m})
	return m
}

type envIndex struct {
	of []string
	m  map[string]string
}

// runCommand runs st's program as cmd, inside this process, as run would
// run it as a process: the same stdin (the stream or the bare message),
// arguments and environment; stdout spooled and bounded by outputLimit;
// the timeout through the context; the exit code read by outcome. A
// panic is the stage's failure. A stage still running at its timeout is
// abandoned: its stdin, stdout and stderr are cut off, and it ends when
// its own context, cancelled too, lets it.
func (r *Runner) runCommand(ctx context.Context, cmd Command, st *Stage, env *stream.Envelope, msg *spool.Message, res *Result) (err error) {
	res.InProc = true
	// Memory while small, so that a stage that writes only its envelope
	// block (at rcpt, or handing back the message it was given), or a
	// small message it changed, costs no file.
	out := spool.NewBuffer(r.TempDir, "mf-out-*")
	keep := false
	defer func() {
		if !keep {
			out.Close()
		}
	}()
	// The stream goes over parsed: the stage need not parse what the
	// runner just wrote (stream.Parsed).
	var in io.Reader = bytes.NewReader(nil)
	var mr io.Reader
	if msg != nil && env.HasMessage() {
		if mr, err = msg.Reader(); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		in = mr
	}
	if st.Input == StreamInput {
		if in, err = stream.NewParsed(env, mr); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
	}
	lookupEnv, err := r.lookupEnv(st, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, st.TimeoutAt(env.Phase))
	defer cancel()
	ctx = resident.With(ctx, r.Resident)

	g := &gate{}
	// mf's commands buffer their output themselves.
	lim := &limited{w: out, left: outputLimit(msg)}
	var stderr tail
	done := make(chan int, 1)
	failed := make(chan error, 1)
	onWorker(func() {
		defer func() {
			if p := recover(); p != nil {
				failed <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- cmd(ctx, g.reader(in), gatedWriter{g, lim}, gatedWriter{g, &stderr}, st.Argv[1:], lookupEnv)
	})
	select {
	case res.Exit = <-done:
	case err = <-failed:
	case <-ctx.Done():
	}
	g.shut()
	res.Stderr = strings.TrimSpace(stderr.String())
	if ctx.Err() == context.DeadlineExceeded {
		res.Exit = -1
		return fmt.Errorf("timeout after %s", st.TimeoutAt(env.Phase))
	}
	if err != nil {
		res.Exit = -1
		return err
	}
	if ctx.Err() != nil {
		res.Exit = -1
		return ctx.Err()
	}
	if lim.over {
		res.Exit = -1
		return fmt.Errorf("output: past the limit of %d bytes", outputLimit(msg))
	}
	res.handed = lim.taken
	res.sameMessage = lim.same() && msg != nil && env.HasMessage()
	keep, err = r.outcome(st, env, out, res)
	return err
}

// idleWorkers are goroutines that ran an in-process stage and wait for
// the next. A new goroutine starts with a small stack that each run grew
// again, by copying, to the depth the command-line parser and the stages
// reach: a tenth of what a chain of mf's own stages cost.
var idleWorkers = make(chan chan func(), 64)

// onWorker runs f on an idle worker, or on a new one when all are busy
// (a stage abandoned after its timeout keeps its own until it returns).
// f must not panic.
func onWorker(f func()) {
	select {
	case w := <-idleWorkers:
		w <- f
		return
	default:
	}
	w := make(chan func(), 1)
	w <- f
	go func() {
		for f := range w {
			f()
			select {
			case idleWorkers <- w:
			default:
				return // enough wait already
			}
		}
	}()
}

// gate cuts an abandoned stage off from its stdin, stdout and stderr, so
// nothing it does after the runner has moved on reaches them.
type gate struct {
	mu   sync.Mutex
	gone bool
}

var errAbandoned = errors.New("stage abandoned after its timeout")

func (g *gate) do(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.gone {
		f()
	}
}

func (g *gate) shut() {
	g.mu.Lock()
	g.gone = true
	g.mu.Unlock()
}

type gatedReader struct {
	g *gate
	r io.Reader
}

func (r gatedReader) Read(p []byte) (n int, err error) {
	err = errAbandoned
	r.g.do(func() { n, err = r.r.Read(p) })
	return n, err
}

// Stream hands over the stream parsed (stream.Handover), its message
// behind the gate too.
func (r gatedReader) Stream() (env stream.Envelope, raw []byte, message io.Reader, ok bool) {
	h, is := r.r.(stream.Handover)
	if !is {
		return env, nil, nil, false
	}
	r.g.do(func() { env, raw, message, ok = h.Stream() })
	if !ok {
		return env, nil, nil, false
	}
	return env, raw, r.g.reader(message), true
}

// reader is r behind the gate, a stream.File still if r is one.
func (g *gate) reader(r io.Reader) io.Reader {
	if f, ok := r.(stream.File); ok {
		return gatedFile{gatedReader{g, f}, f}
	}
	return gatedReader{g, r}
}

// gatedFile is a message a stage may read at any offset (stream.File),
// behind the gate.
type gatedFile struct {
	gatedReader
	f stream.File
}

func (r gatedFile) ReadAt(p []byte, off int64) (n int, err error) {
	err = errAbandoned
	r.g.do(func() { n, err = r.f.ReadAt(p, off) })
	return n, err
}

func (r gatedFile) Size() int64 { return r.f.Size() }

type gatedWriter struct {
	g *gate
	w io.Writer
}

func (w gatedWriter) Write(p []byte) (n int, err error) {
	err = errAbandoned
	w.g.do(func() { n, err = w.w.Write(p) })
	return n, err
}

func (w gatedWriter) TakeEnvelope(env stream.Envelope, raw []byte) {
	if t, ok := w.w.(stream.Taker); ok {
		w.g.do(func() { t.TakeEnvelope(env, raw) })
	}
}

func (w gatedWriter) TakeMessage() {
	if t, ok := w.w.(stream.MessageTaker); ok {
		w.g.do(t.TakeMessage)
	}
}

// limited refuses writes past left bytes, as RLIMIT_FSIZE stops a stage
// process that writes too much.
type limited struct {
	w       io.Writer
	left    int64
	over    bool
	written int64
	taken   *stream.Stream // the envelope the stage handed back (stream.Taker)
	message bool           // and the message, unchanged (stream.MessageTaker)
}

func (l *limited) TakeEnvelope(env stream.Envelope, raw []byte) {
	l.taken = &stream.Stream{Env: env, Raw: raw}
}

func (l *limited) TakeMessage() { l.message = true }

// same reports whether the stage handed back the message it was given,
// unchanged: it said so, and wrote the envelope block it handed back and
// nothing more (through a buffer of its own, which it may flush after).
func (l *limited) same() bool {
	return l.message && l.taken != nil && l.written == int64(len(l.taken.Raw))
}

func (l *limited) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errors.New("output past its limit")
	}
	l.left -= int64(len(p))
	n, err := l.w.Write(p)
	l.written += int64(n)
	return n, err
}
