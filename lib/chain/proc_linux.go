package chain

// How stages are started and ended. Each stage run goes through a
// supervisor: the bridge's own binary again (/proc/self/exe), started
// under the name superviseName, which
//
//   - is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the stage
//     leaves behind, even after setsid or a double fork, is reparented to
//     it rather than to init, and is killed when the stage ends;
//   - reads a lifeline pipe whose only writer is the bridge: when the
//     bridge dies, even by SIGKILL, it reads EOF and kills the stage and
//     all it started (PR_SET_PDEATHSIG alone would kill the stage, not its
//     children);
//   - is not dumpable, so a stage cannot read its descriptors through
//     /proc;
//   - starts the stage as the stage user. A bridge started as root drops
//     to its own user, and one thread (see Init) keeps CAP_SETUID,
//     CAP_SETGID and CAP_KILL and hands them to the supervisor as ambient
//     capabilities; the supervisor drops them from its ambient and
//     inheritable sets, so the stage, exec'd with another uid, has none.
//     The stage's parent is then a process of another user: it cannot
//     signal it, and the pipes and files it was given belong to the
//     bridge's user (mode 0600), so another stage cannot open them
//     through /proc/PID/fd either. (Nor can the stage itself: it reads
//     and writes its descriptors 0, 1 and 2 as given, not /dev/stdin,
//     /dev/stdout or /dev/stderr.)
//
// Measured on Linux 6.18 (TestLeftoversEndWithTheStage,
// TestBridgeDeathEndsStages, t/2630): a background, a nohup'd, a setsid'd
// and a double-forked child all come back to the subreaper and end within
// milliseconds of the stage; after kill -9 of the bridge the stage and
// its children end as soon as the lifeline reads EOF. PR_SET_PDEATHSIG
// alone ends only the direct child; a process group misses setsid; a
// cgroup per run needs a delegated cgroup v2 subtree, which a bridge
// running as its own user does not have, and nothing is left to kill it
// when the bridge dies; a PID namespace per run needs CAP_SYS_ADMIN.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// superviseName is argv[0] of a supervisor; init recognises it.
const superviseName = "mf-stage-supervisor"

// Descriptors of a supervisor besides the stage's 0, 1 and 2.
const (
	lifelineFd = 3 // read end of the lifeline: EOF when the bridge is gone
	statusFd   = 4 // where the supervisor says how the stage ended
)

func init() {
	if len(os.Args) > 0 && os.Args[0] == superviseName {
		// syscall.Exit: nothing to flush, and no exit hooks to wait for
		// (the race detector's would sleep a second at each stage).
		syscall.Exit(supervise(os.Args[1:]))
	}
}

// Init makes this process fit to start stages. Call it first thing in
// main, while still root if started as root.
//
// It makes the process not dumpable (PR_SET_DUMPABLE 0): no process of
// its user, stages started as that user among them, may read its memory
// or open its descriptors (the spool files of every message in flight)
// through /proc/PID/fd.
//
// As root it sets aside one thread that keeps CAP_SETUID, CAP_SETGID and
// CAP_KILL when the process later drops root (PR_SET_KEEPCAPS), so stages
// can be started, and ended, as a user other than the bridge's. Every
// other thread loses all capabilities with the drop; that one keeps only
// those three, and starts every stage. They are kept because the stage
// user must differ from the bridge's; the price is that code subverted
// inside the bridge could use them to become any user, root included, as
// it could if the bridge stayed root: the gain is against stages, not
// against a bridge taken over.
func Init() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	if os.Geteuid() != 0 {
		// Started as its own user, the bridge can still switch if it
		// was given the capabilities for it, every thread of them
		// (systemd's AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL).
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if unix.Capget(&hdr, &data[0]) == nil {
			d := data[0]
			starter.given = d.Effective&setIDCaps == setIDCaps && d.Permitted&setIDCaps == setIDCaps && d.Inheritable&setIDCaps == setIDCaps
		}
		return nil
	}
	var err error
	starter.once.Do(func() {
		ready := make(chan error)
		starter.reqs = make(chan func())
		go func() {
			// Never unlocked: the thread dies with the process, and
			// holds what the others lose.
			runtime.LockOSThread()
			ready <- unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0)
			for f := range starter.reqs {
				f()
			}
		}()
		err = <-ready
	})
	if err != nil {
		return fmt.Errorf("prctl PR_SET_KEEPCAPS: %w", err)
	}
	return nil
}

// starter is the thread that starts stages when Init found root.
var starter struct {
	once    sync.Once
	reqs    chan func()
	reduced bool // its capabilities are down to setIDCaps
	given   bool // no starter: every thread was given setIDCaps
}

// setIDCaps are the capabilities the starter keeps: to start a stage as
// another user, and (CAP_KILL) for the supervisor to end that user's
// processes.
const setIDCaps = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID | 1<<unix.CAP_KILL

// start starts cmd, on the starter thread if there is one. wantCaps is
// whether cmd is handed setIDCaps as ambient capabilities, to start and
// end the stage as another user.
func start(cmd *exec.Cmd, wantCaps bool) error {
	if starter.reqs == nil {
		if wantCaps && starter.given {
			cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL}
		}
		return cmd.Start()
	}
	done := make(chan error, 1)
	starter.reqs <- func() {
		if wantCaps && unix.Getuid() != 0 {
			if err := reduceCaps(); err != nil {
				done <- err
				return
			}
			cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL}
		}
		done <- cmd.Start()
	}
	return <-done
}

// reduceCaps leaves the starter thread, once root is dropped, with
// setIDCaps permitted, effective and inheritable (the last so they can
// be raised as ambient for a supervisor).
func reduceCaps() error {
	if starter.reduced {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if data[0].Permitted&setIDCaps != setIDCaps {
		return errors.New("the process dropped root without keeping CAP_SETUID, CAP_SETGID and CAP_KILL (call chain.Init before dropping root)")
	}
	data = [2]unix.CapUserData{{Effective: setIDCaps, Permitted: setIDCaps, Inheritable: setIDCaps}}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	starter.reduced = true
	return nil
}

// lifeline is the pipe whose read end every supervisor holds; its write
// end is the bridge's alone (close-on-exec), so it closes only when the
// bridge ends.
var lifeline struct {
	once sync.Once
	r, w *os.File
	err  error
}

func lifelineReader() (*os.File, error) {
	lifeline.once.Do(func() { lifeline.r, lifeline.w, lifeline.err = os.Pipe() })
	return lifeline.r, lifeline.err
}

// supervisorArgs are a supervisor's arguments: the file size limit, the
// credentials ("-" for the supervisor's own), then the stage's path and
// argv.
func supervisorArgs(fsize uint64, cred *syscall.Credential, path string, argv []string) []string {
	c := "-"
	if cred != nil {
		gs := make([]string, len(cred.Groups))
		for i, g := range cred.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		c = fmt.Sprintf("%d:%d:%s", cred.Uid, cred.Gid, strings.Join(gs, ","))
	}
	return append([]string{superviseName, strconv.FormatUint(fsize, 10), c, path}, argv...)
}

func parseCred(s string) (*syscall.Credential, error) {
	if s == "-" {
		return nil, nil
	}
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return nil, fmt.Errorf("credentials %q", s)
	}
	uid, err1 := strconv.ParseUint(f[0], 10, 32)
	gid, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("credentials %q", s)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if f[2] != "" {
		for _, g := range strings.Split(f[2], ",") {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("credentials %q", s)
			}
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, nil
}

// supervise is a supervisor's main: start the stage, wait for it or for
// the bridge to stop it or die, end everything it started, and say how
// it ended on statusFd ("exit N", "signal N" or "start ERRNO TEXT").
func supervise(args []string) int {
	if !isPipe(statusFd) || !isPipe(lifelineFd) || len(args) < 4 {
		fmt.Fprintln(os.Stderr, "mf-stage-supervisor: started by hand: it is run by mf-bridge only")
		return 2
	}
	status := os.NewFile(statusFd, "status")
	life := os.NewFile(lifelineFd, "lifeline")
	syscall.CloseOnExec(statusFd)
	syscall.CloseOnExec(lifelineFd)
	say := func(format string, a ...any) int {
		fmt.Fprintf(status, format, a...)
		return 0
	}
	fail := func(err error) int {
		var errno syscall.Errno
		errors.As(err, &errno)
		return say("start %d %s", int(errno), err)
	}
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err))
	}
	// Capabilities handed down for the change of user go no further.
	unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) == nil && (data[0].Inheritable != 0 || data[1].Inheritable != 0) {
		data[0].Inheritable, data[1].Inheritable = 0, 0
		unix.Capset(&hdr, &data[0])
	}
	fsize, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return fail(fmt.Errorf("file size limit %q", args[0]))
	}
	cred, err := parseCred(args[1])
	if err != nil {
		return fail(err)
	}
	if fsize > 0 {
		// No file the stage writes, its output among them, may grow past
		// this: a stage gone wild is stopped (SIGXFSZ) before it fills
		// the spool's disk.
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: fsize, Max: fsize}); err != nil {
			return fail(fmt.Errorf("setrlimit: %w", err))
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)

	cmd := &exec.Cmd{Path: args[2], Args: args[3:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	// The stage has its descriptors; the supervisor keeps none of them,
	// so the bridge sees the stage's output end with the stage.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			unix.Dup3(int(null.Fd()), fd, 0)
		}
		null.Close()
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, life)
		close(gone)
	}()
	select {
	case <-waited:
	case <-stop:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	case <-gone:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		endAll()
		return 1 // nobody is left to read the status
	}
	endAll()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return say("signal %d", int(ws.Signal()))
	}
	return say("exit %d", ws.ExitStatus())
}

func isPipe(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}

// endAll kills every process left below the supervisor: as a subreaper
// it inherits each orphan of its subtree, so killing its children until
// none is left ends all of them, however they detached.
func endAll() {
	pause := time.Millisecond
	var ws syscall.WaitStatus
	for {
		// No child at all, the common case, is known without /proc.
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.ECHILD) {
			return
		}
		if pid > 0 {
			continue
		}
		for _, pid := range children() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		pid, err = syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.ECHILD):
			return
		case pid > 0 || errors.Is(err, syscall.EINTR):
			pause = time.Millisecond
			continue
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// children lists the process's children: from /proc/self/task/*/children
// where the kernel has it, else by every process's parent.
func children() []int {
	var out []int
	files, _ := filepath.Glob("/proc/self/task/*/children")
	if len(files) > 0 {
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, w := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(w); err == nil {
					out = append(out, n)
				}
			}
		}
		return out
	}
	self := os.Getpid()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(self) {
			out = append(out, pid)
		}
	}
	return out
}

// SwitchesUser reports whether Init found root, or the capabilities to
// switch users, so stages can run as a user of their own (Runner.User)
// even after the process drops root.
func SwitchesUser() bool { return starter.reqs != nil || starter.given }
