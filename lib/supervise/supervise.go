// Package supervise is the process between mf-bridge and each stage it
// starts (lib/chain says why there is one): a child subreaper that starts
// the stage as the stage user, ends whatever the stage left behind when
// it ends, and ends it all when the bridge dies.
//
// It is a program of its own, mf-stage-supervisor: a process start per
// stage run is its price, and one of mf-bridge itself, whose packages
// take milliseconds to initialize, cost that much more for every stage
// run. make builds it from C where there is a compiler
// (cmd/mf-stage-supervisor/c/mf-stage-supervisor.c, which speaks the same
// arguments and status lines), since even the Go runtime's start costs
// more than the stage's exec; this is the one built without a compiler,
// and the one mf-bridge runs as its own supervisor when that program is
// missing.
package supervise

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
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Name is argv[0] of a supervisor, and the name of its program.
const Name = "mf-stage-supervisor"

// Descriptors of a supervisor besides the stage's 0, 1 and 2.
const (
	LifelineFd = 3 // read end of the lifeline: EOF when the bridge is gone
	StatusFd   = 4 // where the supervisor says how the stage ended
)

// Args are a supervisor's argv: the file size limit, the
// credentials ("-" for the supervisor's own), then the stage's path and
// argv.
func Args(fsize uint64, cred *syscall.Credential, path string, argv []string) []string {
	c := "-"
	if cred != nil {
		gs := make([]string, len(cred.Groups))
		for i, g := range cred.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		c = fmt.Sprintf("%d:%d:%s", cred.Uid, cred.Gid, strings.Join(gs, ","))
	}
	return append([]string{Name, strconv.FormatUint(fsize, 10), c, path}, argv...)
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

// Main is a supervisor's main, given its arguments after argv[0]: start the stage, wait for it or for
// the bridge to stop it or die, end everything it started, and say how
// it ended on StatusFd ("exit N", "signal N" or "start ERRNO TEXT").
func Main(args []string) int {
	// Capabilities belong to threads: the ones dropped below must be
	// dropped on the thread that then starts the stage. (Inside
	// mf-bridge's init this held by itself: init runs on the main
	// thread, locked.)
	runtime.LockOSThread()
	// Started as /proc/self/fd/N (or /proc/self/exe), its name in ps(1)
	// would be N: it says what it is instead.
	os.WriteFile(fmt.Sprintf("/proc/self/task/%d/comm", os.Getpid()), []byte(Name), 0)
	if !isPipe(StatusFd) || !isPipe(LifelineFd) || len(args) < 4 {
		fmt.Fprintln(os.Stderr, "mf-stage-supervisor: started by hand: it is run by mf-bridge only")
		return 2
	}
	status := os.NewFile(StatusFd, "status")
	life := os.NewFile(LifelineFd, "lifeline")
	syscall.CloseOnExec(StatusFd)
	syscall.CloseOnExec(LifelineFd)
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
