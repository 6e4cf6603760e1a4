package chain

// How stages are started and ended. Each stage run goes through a
// supervisor (lib/supervise): the program mf-stage-supervisor beside
// mf-bridge, or where that is missing the bridge's own binary again
// (/proc/self/exe) under that name, which
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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"mf/lib/supervise"
)

func init() {
	if len(os.Args) > 0 && os.Args[0] == supervise.Name {
		// Its own supervisor, when mf-stage-supervisor is not there.
		// syscall.Exit: nothing to flush, and no exit hooks to wait for
		// (the race detector's would sleep a second at each stage).
		syscall.Exit(supervise.Main(os.Args[1:]))
	}
}

// supervisor is the program each stage run starts: mf-stage-supervisor
// beside the running program, kept open and run as /proc/self/fd/N so
// that, as for the bridge itself, one installed on disk meanwhile takes
// effect at the next start of the bridge; or the bridge's own binary
// where it is missing or not safe to run.
var supervisor struct {
	once sync.Once
	path string
	f    *os.File
}

// supervisorPath is where the supervisor of every stage run is.
func supervisorPath() string {
	supervisor.once.Do(func() {
		supervisor.path = "/proc/self/exe"
		if f := openSupervisor(); f != nil {
			supervisor.f, supervisor.path = f, fmt.Sprintf("/proc/self/fd/%d", f.Fd())
		}
	})
	return supervisor.path
}

// openSupervisor opens mf-stage-supervisor beside the running program if
// it is there and nobody but root or the bridge's user can have put it
// there: a regular executable file owned by one of them, which neither
// group nor others may write, in a directory they may not write either
// (unless sticky).
func openSupervisor() *os.File {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	dir := filepath.Dir(exe)
	f, err := os.Open(filepath.Join(dir, supervise.Name))
	if err != nil {
		return nil
	}
	var st, dst unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || unix.Stat(dir, &dst) != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 || st.Mode&0o022 != 0 ||
		st.Uid != 0 && int(st.Uid) != os.Geteuid() ||
		dst.Mode&0o022 != 0 && dst.Mode&unix.S_ISVTX == 0 {
		f.Close()
		return nil
	}
	return f
}

// Supervisor says which program starts each stage, for a person, and
// whether it is the bridge's own binary for want of a safe
// mf-stage-supervisor beside it.
func Supervisor() (name string, own bool) {
	p := supervisorPath()
	if supervisor.f != nil {
		return supervisor.f.Name(), false
	}
	return p + " (the bridge itself: no " + supervise.Name + " beside it that only root or the bridge's user could have written)", true
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
	supervisorPath() // found while the bridge may still read anything
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

// SwitchesUser reports whether Init found root, or the capabilities to
// switch users, so stages can run as a user of their own (Runner.User)
// even after the process drops root.
func SwitchesUser() bool { return starter.reqs != nil || starter.given }
