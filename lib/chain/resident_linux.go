package chain

// The C mf-stage-supervisor kept running. An exec per stage run of even
// that small static program costs more than half of the stage's own
// exec (BenchmarkRun); started once as "mf-stage-supervisor -resident",
// it forks a supervisor for each run instead, ahead of the run (a
// spare waits for the next request, so no fork is on the run's way),
// which is then the same supervisor as one exec'd: the stage's
// descriptors, a lifeline, a status pipe, the same arguments. Its
// socket is one end of a socketpair only the bridge holds, so nothing
// else can ask it to start anything.
// The Go mf-stage-supervisor has no such mode (a Go program cannot
// fork): it refuses, and every run execs it as before.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mf/lib/supervise"
)

// residentMax is the largest request sent to a resident supervisor (it
// reads up to 256 KiB); a larger one, like one whose strings hold a NUL,
// goes the exec way, which gives what that gives.
const residentMax = 192 << 10

// residents holds the resident supervisor, started on the first stage
// run after KeepSupervisor: one for the supervisor program, the
// effective user and whether it was handed the capabilities to switch
// users, which it keeps for as long as it runs.
var residents struct {
	mu    sync.Mutex
	on    bool
	key   residentKey
	conn  *net.UnixConn
	pid   int
	ended chan struct{}   // closed once it has exited
	none  map[string]bool // supervisor programs not kept: no resident mode, or it failed to start once; their runs exec them
}

// KeepSupervisor has the stage runs from now on forked by a resident
// supervisor, where the supervisor program has that mode: for a server,
// which runs stages for message after message. A run of a one-shot
// command execs its supervisor, which costs less than starting one to
// keep. EndSupervisor ends it.
func KeepSupervisor() {
	residents.mu.Lock()
	residents.on = true
	residents.mu.Unlock()
}

// EndSupervisor ends the resident supervisor, if one runs, and waits a
// moment for it to exit: the runs it started go on, each until its
// stage ends.
func EndSupervisor() {
	residents.mu.Lock()
	residents.on = false
	conn, ended := residents.conn, residents.ended
	residents.conn = nil
	residents.mu.Unlock()
	if conn == nil {
		return
	}
	conn.Close()
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
	}
}

type residentKey struct {
	path     string
	euid     int
	wantCaps bool
}

// residentConn returns the connection to the resident supervisor for
// key, starting one if there is none; nil if the supervisor has no
// resident mode or it could not be started.
func residentConn(key residentKey) *net.UnixConn {
	residents.mu.Lock()
	defer residents.mu.Unlock()
	if residents.conn != nil && residents.key == key {
		return residents.conn
	}
	if !residents.on || residents.none[key.path] {
		return nil
	}
	if residents.conn != nil {
		// Another user or program now: the old one ends when its socket
		// closes; the runs it started go on.
		residents.conn.Close()
		residents.conn = nil
	}
	conn, pid, ended, err := startResident(key)
	if err != nil {
		if residents.none == nil {
			residents.none = map[string]bool{}
		}
		residents.none[key.path] = true
		return nil
	}
	residents.key, residents.conn, residents.pid, residents.ended = key, conn, pid, ended
	return conn
}

// dropResident forgets conn, which failed: the next run starts another.
func dropResident(conn *net.UnixConn) {
	residents.mu.Lock()
	defer residents.mu.Unlock()
	if residents.conn == conn {
		residents.conn = nil
	}
	conn.Close()
}

func startResident(key residentKey) (*net.UnixConn, int, chan struct{}, error) {
	life, err := lifelineReader()
	if err != nil {
		return nil, 0, nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "resident"), os.NewFile(uintptr(fds[1]), "resident")
	defer ours.Close()
	defer theirs.Close()
	cmd := &exec.Cmd{Path: key.path, Args: []string{supervise.Name, "-resident"}, Env: []string{}}
	cmd.ExtraFiles = []*os.File{theirs, life} // its socket, its lifeline
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := start(cmd, key.wantCaps); err != nil {
		return nil, 0, nil, err
	}
	theirs.Close()
	c, err := net.FileConn(ours)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, 0, nil, err
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		cmd.Process.Kill()
		cmd.Wait()
		return nil, 0, nil, errors.New("resident supervisor: not a unix socket")
	}
	done := make(chan struct{})
	go func() {
		// Should it die, the socket goes with it, and with the socket
		// the descriptors of requests it did not take: their status
		// pipes close, and those runs fail as the stage's supervisor
		// ending without a word. The next run starts another.
		cmd.Wait()
		close(done)
		dropResident(conn)
	}()
	// It says it is ready; the Go supervisor exits instead.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if n, err := conn.Read(b); n != 1 || b[0] != 'R' {
		conn.Close()
		cmd.Process.Kill()
		return nil, 0, nil, fmt.Errorf("resident supervisor: not ready (%q, %v)", b[:n], err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, cmd.Process.Pid, done, nil
}

// residentRun is one stage run of a resident supervisor.
type residentRun struct {
	conn  *net.UnixConn
	lifeW *os.File // closed to end the run
	once  sync.Once
}

// errNotTaken: a resident supervisor did not take a run.
var errNotTaken = errors.New("the resident supervisor did not take the run")

// launchResident has the resident supervisor start a stage run with
// args and env, files being the run's descriptors 0, 1 and 2 and status
// its status pipe. ok is false when the run must go the exec way: not
// wanted, no resident supervisor, or a request it cannot take.
func launchResident(want bool, args, env []string, files [3]*os.File, status *os.File, wantCaps bool) (run *residentRun, ok bool) {
	if !want {
		return nil, false
	}
	// os/exec keeps the last of a name's values; C's getenv would find
	// the first.
	env = dedupEnv(env)
	var req bytes.Buffer
	req.WriteString(strconv.Itoa(len(args)))
	req.WriteByte(0)
	for _, list := range [][]string{args, env} {
		for _, s := range list {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, false
			}
			req.WriteString(s)
			req.WriteByte(0)
		}
	}
	if req.Len() > residentMax || len(args)+len(env) > 16000 {
		return nil, false
	}
	conn := residentConn(residentKey{supervisorPath(), os.Geteuid(), wantCaps})
	if conn == nil {
		return nil, false
	}
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, false
	}
	defer lifeR.Close()
	rights := syscall.UnixRights(int(files[0].Fd()), int(files[1].Fd()), int(files[2].Fd()), int(lifeR.Fd()), int(status.Fd()))
	if _, _, err := conn.WriteMsgUnix(req.Bytes(), rights, nil); err != nil {
		lifeW.Close()
		dropResident(conn)
		return nil, false
	}
	return &residentRun{conn: conn, lifeW: lifeW}, true
}

// stop ends the run: its supervisor reads EOF on the run's lifeline and
// ends the stage and all it started.
func (l *residentRun) stop() { l.once.Do(func() { l.lifeW.Close() }) }

// wait reads what the supervisor said on status, until it ends, or
// until ctx is done and it has had a while to end the stage.
// errNotTaken: the resident supervisor did not take the request (it
// died), so the stage did not run and can run the exec way.
func (l *residentRun) wait(ctx context.Context, status *os.File) ([]byte, string, error) {
	defer l.stop()
	defer context.AfterFunc(ctx, func() {
		l.stop()
		status.SetReadDeadline(time.Now().Add(2 * time.Second))
	})()
	said, _ := io.ReadAll(io.LimitReader(status, 4096))
	// The resident supervisor's spare writes "+" once it has the request.
	taken, ok := bytes.CutPrefix(said, []byte("+"))
	if !ok && ctx.Err() == nil {
		dropResident(l.conn)
		return nil, "", errNotTaken
	}
	return taken, "its status pipe closed", nil
}

// dedupEnv keeps the last of each name's values, as os/exec does for a
// process it starts.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		name, _, _ := strings.Cut(env[i], "=")
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, env[i])
	}
	slices.Reverse(out)
	return out
}
