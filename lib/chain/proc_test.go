package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// TestMain lets the test binary play a bridge that runs one stage and
// waits to be killed (see TestBridgeDeathEndsStages), and a stage program:
// with MF_TEST_STAGE=1 it runs testStage as its main, so the same stage
// runs as a process and in-process (inproc_test.go).
func TestMain(m *testing.M) {
	if sv := os.Getenv("MF_CHAIN_TEST_SUPERVISOR"); sv != "" {
		// The tests again with another supervisor (TestCSupervisor),
		// kept running as a server keeps it.
		supervisorPath()
		supervisor.path = sv
		KeepSupervisor()
	}
	if os.Getenv("MF_TEST_STAGE") == "1" {
		os.Exit(testStage(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args[1:], os.LookupEnv))
	}
	if line := os.Getenv("MF_CHAIN_TEST_BRIDGE"); line != "" {
		st, err := Parse(line)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		e := env
		(&Runner{Env: []string{"PATH=/usr/bin:/bin"}}).Run(context.Background(), st, &e, nil)
		os.Exit(0)
	}
	if dir := os.Getenv("MF_CHAIN_TEST_DROP"); dir != "" {
		os.Exit(dropAndIsolate(dir))
	}
	// Tests run as root here; the runner's refusal to run a stage
	// in-process as root is tested on its own.
	euid = func() int { return 65534 }
	code := m.Run()
	if cSupervisorDir != "" {
		os.RemoveAll(cSupervisorDir)
	}
	os.Exit(code)
}

// alive reports whether pid is a process that has not ended (a zombie
// has ended: it only waits for its parent to notice).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i:], ") Z") && !strings.HasPrefix(s[i:], ") X")
}

// pids reads the process ids a stage wrote to file, one a line.
func pids(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", file, f)
		}
		out = append(out, n)
	}
	return out
}

// gone waits up to d for every pid to end, and kills and names those
// that did not.
func gone(t *testing.T, what string, ps []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, p := range ps {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("%s: process(es) %v still running %s later", what, left, d)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeftoversEndWithTheStage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, file, body string }{
		{"background", "bg", `sleep 600 & echo $! >` + dir + `/bg`},
		{"nohup", "nohup", `nohup sleep 600 >/dev/null 2>&1 & echo $! >` + dir + `/nohup`},
		{"setsid", "setsid", `setsid sh -c 'echo $$ >` + dir + `/setsid; exec sleep 600' </dev/null >/dev/null 2>&1 & while [ ! -s ` + dir + `/setsid ]; do sleep 0.01; done`},
		{"double fork", "double", `( sh -c 'echo $$ >` + dir + `/double; exec sleep 600' & ) ; while [ ! -s ` + dir + `/double ]; do sleep 0.01; done`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runStage(t, "output=exit", "cat >/dev/null; "+c.body+"; exit 0", spooled(t, "S: x\n\nbody\n"))
			if r.Err != nil || r.Verdict.Action != verdict.Continue {
				t.Fatalf("%s %v (%s)", r.Verdict, r.Err, r.Stderr)
			}
			gone(t, c.name, pids(t, filepath.Join(dir, c.file)), time.Second)
		})
	}
}

func TestStderrHeldOpenDoesNotDelay(t *testing.T) {
	start := time.Now()
	r := runStage(t, "output=exit", "cat >/dev/null; sleep 30 & exit 0", spooled(t, "S: x\n\nbody\n"))
	if r.Err != nil || r.Verdict.Action != verdict.Continue {
		t.Fatalf("%s %v", r.Verdict, r.Err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a child holding stderr open delayed the stage: %s", d)
	}
}

func TestBridgeDeathEndsStages(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/pids"
	line := "t rcpt timeout=60s output=exit -- sh -c 'sleep 600 & echo $$ $! >" + file + ".new; mv " + file + ".new " + file + "; wait'"
	cmd := exec.Command(os.Args[0], "-test.run=NONE")
	cmd.Env = append(os.Environ(), "MF_CHAIN_TEST_BRIDGE="+line)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(file); err == nil {
			break
		}
		if i > 500 {
			t.Fatal("the stage did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ps := pids(t, file)
	cmd.Process.Kill()
	cmd.Wait()
	gone(t, "after kill -9 of the bridge", ps, time.Second)
}

// A caller that gives up (the bridge at its shutdown deadline) ends the
// stage at once, and the message is refused for now whatever on-error
// says: accepting it unscanned would be a silent pass.
func TestCancelIsTempfail(t *testing.T) {
	dir := t.TempDir()
	st, err := Parse("t data timeout=60s on-error=accept output=exit -- sh -c 'sleep 600 & echo $! >" + dir + "/pid; wait'")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(dir + "/pid"); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	e := env
	r := (&Runner{}).Run(ctx, st, &e, spooled(t, "S: x\n\nbody\n"))
	if r.Verdict.Action != verdict.Tempfail {
		t.Errorf("cancelled stage with on-error=accept: %s (%v)", r.Verdict, r.Err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s", d)
	}
	gone(t, "after cancel", pids(t, dir+"/pid"), time.Second)

	// A chain whose caller gave up before a stage ran refuses for now
	// too, rather than let the message through unscanned.
	c := &Chain{Runner: &Runner{}, Stages: []*Stage{st}}
	o := c.Run(ctx, env, spooled(t, "S: x\n\nbody\n"))
	o.Close()
	if o.Verdict.Action != verdict.Tempfail {
		t.Errorf("chain after cancel: %s", o.Verdict)
	}
}

// Many recipients: every one of 1000 recipients of 170 bytes, or 70 of
// 2000, would not fit exec's 128 KiB for one variable. The stage still
// runs, and is told the list was cut.
func TestManyRecipients(t *testing.T) {
	for _, c := range []struct{ n, size int }{{1000, 170}, {70, 2000}, {5000, 64}} {
		e := env
		e.Rcpts = nil
		for i := 0; i < c.n; i++ {
			a := fmt.Sprintf("r%d@", i)
			e.Rcpts = append(e.Rcpts, a+strings.Repeat("x", c.size-len(a)-len(".example"))+".example")
		}
		st, err := Parse(`t rcpt on-error=accept output=headers -- sh -c 'echo "X-T: ${RECIPIENTS_TRUNCATED:-0} $RECIPIENT_COUNT $(printf "%s\n" "$RECIPIENTS" | wc -l) ${#RECIPIENTS} $RECIPIENT"'`)
		if err != nil {
			t.Fatal(err)
		}
		e.Phase = stream.Rcpt
		r := (&Runner{Env: []string{"PATH=/usr/bin:/bin"}}).Run(context.Background(), st, &e, nil)
		if r.Err != nil || len(r.Headers) != 1 {
			t.Errorf("%d recipients of %d bytes: the stage did not run: %v (%s)", c.n, c.size, r.Err, r.Verdict)
			continue
		}
		f := strings.Fields(strings.TrimPrefix(r.Headers[0], "X-T: "))
		kept, _ := strconv.Atoi(f[2])
		size, _ := strconv.Atoi(f[3])
		if f[0] != "1" || f[1] != strconv.Itoa(c.n) || kept < 1 || kept >= c.n || size > 64<<10 || f[4] != e.CurrentRcpts()[0] {
			t.Errorf("%d recipients of %d bytes: truncated %s, count %s, %d kept in %d bytes, first %.20s", c.n, c.size, f[0], f[1], kept, size, f[4])
		}
	}
	// A list that fits is whole and not marked.
	e := env
	st, _ := Parse(`t data output=headers input=message -- sh -c 'echo "X-T: ${RECIPIENTS_TRUNCATED:-0} $RECIPIENT_COUNT"'`)
	r := (&Runner{}).Run(context.Background(), st, &e, spooled(t, "S: x\n\n"))
	if r.Err != nil || len(r.Headers) != 1 || r.Headers[0] != "X-T: 0 2" {
		t.Errorf("two recipients: %q %v", r.Headers, r.Err)
	}
}

// A value no SMTP transaction can carry (only a hand-made stream can)
// cannot be given in the environment: the stage cannot run, and that is
// a refusal for now whatever on-error says.
func TestEnvelopeTooBigIsTempfail(t *testing.T) {
	e := env
	e.Helo = strings.Repeat("h", 200<<10)
	st, _ := Parse(`t data on-error=accept output=exit -- true`)
	r := (&Runner{}).Run(context.Background(), st, &e, spooled(t, "S: x\n\n"))
	if r.Err == nil || r.Verdict.Action != verdict.Tempfail {
		t.Errorf("a 200 KiB HELO with on-error=accept: %s %v", r.Verdict, r.Err)
	}
}

// stageUID is a uid no account has: stages of the isolation tests run
// as it, and the "bridge" as nobody or root.
const stageUID = 64123

// isolation runs two stages at once and reports what the first could
// reach: its parent (the supervisor), the bridge (pid), and the second
// stage's stdin, which holds the message "secret".
func isolation(r *Runner, dir string) ([]string, error) {
	a, err := Parse(`a data input=message output=headers timeout=20s -- sh -c '
		cat >/dev/null
		r() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
		echo "X-Uid: $(id -u)"
		echo "X-Home: $HOME"
		echo "X-Ls-Parent: $(r ls /proc/$PPID/fd)"
		echo "X-Kill-Parent: $(r kill -0 $PPID)"
		echo "X-Ls-Bridge: $(r ls /proc/$BRIDGE_PID/fd)"
		echo "X-Kill-Bridge: $(r kill -0 $BRIDGE_PID)"
		while [ ! -s ` + dir + `/b ]; do sleep 0.01; done
		b=$(cat ` + dir + `/b)
		echo "X-Other-Stderr: $(r timeout 2 head -c 1 /proc/$b/fd/2)"
		echo "X-Own-Stderr: $(r sh -c "echo said >/dev/stderr")"
		echo "X-Other-Stdin: $(timeout 2 head -c 64 /proc/$b/fd/0 2>/dev/null | tr -cd a-z)"
		touch ` + dir + `/done'`)
	if err != nil {
		return nil, err
	}
	b, err := Parse(`b data input=message output=exit timeout=20s -- sh -c 'echo $$ >` + dir + `/b; while [ ! -e ` + dir + `/done ]; do sleep 0.01; done; cat >/dev/null'`)
	if err != nil {
		return nil, err
	}
	spoolMsg := func(body string) (*spool.Message, error) {
		f, err := os.CreateTemp("", "mf-test-msg")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name())
		f.WriteString(body)
		return &spool.Message{File: f}, nil
	}
	ma, err := spoolMsg("S: a\n\nnothing here\n")
	if err != nil {
		return nil, err
	}
	mb, err := spoolMsg("S: b\n\nsecret\n")
	if err != nil {
		return nil, err
	}
	done := make(chan *Result)
	go func() {
		e := env
		done <- r.Run(context.Background(), b, &e, mb)
	}()
	e := env
	ra := r.Run(context.Background(), a, &e, ma)
	rb := <-done
	if ra.Err != nil || rb.Err != nil {
		return nil, fmt.Errorf("a: %v (%s); b: %v (%s)", ra.Err, ra.Stderr, rb.Err, rb.Stderr)
	}
	return ra.Headers, nil
}

func sharedDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "mf-isolation")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func stageUser() *User {
	return &User{Name: "mf-test-stage", Home: "/nonexistent", Credential: &syscall.Credential{Uid: stageUID, Gid: stageUID, Groups: []uint32{}}}
}

// dropAndIsolate is the test binary as a bridge started as root: Init,
// drop to nobody, then run the isolation stages as stageUID.
func dropAndIsolate(dir string) int {
	if err := Init(); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := syscall.Setgroups(nil); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := syscall.Setgid(65534); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := syscall.Setuid(65534); err != nil {
		fmt.Println(err)
		return 1
	}
	r := &Runner{Env: []string{"PATH=/usr/bin:/bin", "HOME=/root", fmt.Sprintf("BRIDGE_PID=%d", os.Getpid())}, User: stageUser()}
	h, err := isolation(r, dir)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(strings.Join(h, "\n"))
	// What a stage of another user leaves, or runs at its timeout, ends
	// too: the supervisor may kill that user's processes.
	for _, line := range []string{
		"left data output=exit -- sh -c 'cat >/dev/null; setsid sleep 600 & echo $! >" + dir + "/left'",
		"slow data output=exit timeout=300ms -- sh -c 'cat >/dev/null; sleep 600 & echo $! >" + dir + "/slow; wait'",
	} {
		st, err := Parse(line)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		e := env
		r.Run(context.Background(), st, &e, nil)
	}
	return 0
}

func TestStageIsolation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run stages as another user")
	}
	want := fmt.Sprintf("X-Uid: %d|X-Home: /nonexistent|X-Ls-Parent: no|X-Kill-Parent: no|X-Ls-Bridge: no|X-Kill-Bridge: no|X-Other-Stderr: no|X-Own-Stderr: yes|X-Other-Stdin:", stageUID)
	t.Run("bridge root", func(t *testing.T) {
		r := &Runner{Env: []string{"PATH=/usr/bin:/bin", "HOME=/root", fmt.Sprintf("BRIDGE_PID=%d", os.Getpid())}, User: stageUser()}
		h, err := isolation(r, sharedDir(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(strings.Join(h, "|")); got != want {
			t.Errorf("the stage reached\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("bridge dropped root", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=NONE")
		cmd.Env = append(os.Environ(), "MF_CHAIN_TEST_DROP="+sharedDir(t))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got := strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "|"); got != want {
			t.Errorf("the stage reached\n%s\nwant\n%s", got, want)
		}
		dir := cmd.Env[len(cmd.Env)-1][len("MF_CHAIN_TEST_DROP="):]
		gone(t, "left by a stage of another user", pids(t, dir+"/left"), time.Second)
		gone(t, "a stage of another user at its timeout", pids(t, dir+"/slow"), time.Second)
	})
}

// Stop ends what runs and refuses for now what comes after.
func TestStop(t *testing.T) {
	dir := t.TempDir()
	st, err := Parse("t data timeout=60s on-error=accept output=exit -- sh -c 'sleep 600 & echo $! >" + dir + "/pid; wait'")
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{}
	done := make(chan *Result)
	start := time.Now()
	for i := 0; i < 3; i++ {
		go func() {
			e := env
			done <- r.Run(context.Background(), st, &e, spooled(t, "S: x\n\nbody\n"))
		}()
	}
	for {
		if _, err := os.Stat(dir + "/pid"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	r.Stop()
	for i := 0; i < 3; i++ {
		res := <-done
		if res.Verdict.Action != verdict.Tempfail || !errors.Is(res.Err, errStopped) {
			t.Errorf("a stopped stage with on-error=accept: %s (%v)", res.Verdict, res.Err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %s", d)
	}
	gone(t, "after Stop", pids(t, dir+"/pid"), time.Second)
	e := env
	if res := r.Run(context.Background(), st, &e, spooled(t, "S: x\n\nbody\n")); res.Verdict.Action != verdict.Tempfail || res.Exit != -1 {
		t.Errorf("a run after Stop: %s exit %d", res.Verdict, res.Exit)
	}
}

// A stage that cannot start for a reason of the configuration's own (no
// such program, not executable) follows on-error: the message is not to
// blame.
func TestStartFailureFollowsOnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/noexec", []byte("#!/bin/sh\nexit 100\n"), 0o644)
	for _, prog := range []string{"no-such-program-here", dir + "/noexec"} {
		st, err := Parse("t data on-error=accept output=exit -- " + prog)
		if err != nil {
			t.Fatal(err)
		}
		e := env
		r := (&Runner{}).Run(context.Background(), st, &e, spooled(t, "S: x\n\n"))
		if r.Verdict.Action != verdict.Continue || r.Err == nil || !strings.HasPrefix(r.Err.Error(), "start: ") || r.Exit != -1 {
			t.Errorf("%s with on-error=accept: %s, %v, exit %d", prog, r.Verdict, r.Err, r.Exit)
		}
	}
	st, _ := Parse("t data output=exit -- " + dir + "/noexec")
	e := env
	r := (&Runner{}).Run(context.Background(), st, &e, spooled(t, "S: x\n\n"))
	if !errors.Is(r.Err, syscall.EACCES) || strings.Count(r.Err.Error(), "permission denied") != 1 {
		t.Errorf("not executable: %v", r.Err)
	}
}

// TestCSupervisor runs this package's tests again with the C
// mf-stage-supervisor, which make installs where there is a C compiler,
// starting every stage: it must behave as lib/supervise does.
func TestCSupervisor(t *testing.T) {
	if os.Getenv("MF_CHAIN_TEST_SUPERVISOR") != "" {
		return
	}
	sv, err := cSupervisor()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("the C mf-stage-supervisor is not tested: ", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=.", "-test.skip=^(TestCSupervisor|TestMfCommandsConcurrent|TestMfAcceptScanConcurrent|FuzzResidentRequest)$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MF_CHAIN_TEST_SUPERVISOR="+sv)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests with %s: %v\n%s", sv, err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("the tests with %s said:\n%s", sv, out)
	}
}

// TestResidentSupervisor: with the C supervisor (inside TestCSupervisor)
// a stage's supervisor is forked by the resident one, not started by the
// bridge; when the resident one dies, a run it had not taken still runs,
// and the next starts another.
func TestResidentSupervisor(t *testing.T) {
	if os.Getenv("MF_CHAIN_TEST_SUPERVISOR") == "" {
		t.Skip("runs inside TestCSupervisor, with the C mf-stage-supervisor")
	}
	msg := spooled(t, "Subject: x\n\nbody\n")
	// grandparent: the parent of a stage's supervisor (-1 and an error
	// when the run fails; it runs on goroutines too).
	grandparent := func() int {
		t.Helper()
		r := runStage(t, "input=message output=headers", `cat >/dev/null; echo "X-Grandparent: $(cut -d' ' -f4 /proc/$PPID/stat)"`, msg)
		if r.Err != nil || len(r.Headers) != 1 {
			t.Errorf("stage: %v %q", r.Err, r.Headers)
			return -1
		}
		n, err := strconv.Atoi(strings.TrimPrefix(r.Headers[0], "X-Grandparent: "))
		if err != nil {
			t.Errorf("stage: %q", r.Headers[0])
			return -1
		}
		return n
	}
	first := grandparent()
	residents.mu.Lock()
	pid := residents.pid
	residents.mu.Unlock()
	if first == os.Getpid() || first != pid {
		t.Fatalf("the supervisor's parent is %d; the bridge is %d, the resident supervisor %d", first, os.Getpid(), pid)
	}
	if grandparent() != pid {
		t.Error("a second run has another resident supervisor")
	}
	// It dies, and the spare it keeps waiting (in its process group) with
	// it, with a run sent and not taken: that run is run the exec way,
	// once.
	syscall.Kill(-pid, syscall.SIGSTOP)
	got := make(chan int)
	go func() { got <- grandparent() }()
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(-pid, syscall.SIGKILL)
	if gp := <-got; gp != os.Getpid() {
		t.Errorf("the run the dead resident supervisor did not take: its supervisor's parent is %d, not the bridge %d", gp, os.Getpid())
	}
	now := grandparent()
	if now == pid || now == os.Getpid() {
		t.Errorf("after the resident supervisor died, runs come from %d (it was %d, the bridge is %d)", now, pid, os.Getpid())
	}
	// A run under way when the resident alone dies goes on to its end:
	// its supervisor, a spare until it took the run, no longer dies
	// with the resident, and is the orphan the stage's parent then is.
	st, err := Parse("t data input=message output=headers " + script(t, `cat >/dev/null; sleep 0.5; echo "X-Done: $(cut -d' ' -f4 /proc/$PPID/stat)"`))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Result)
	go func() {
		e := env
		done <- (&Runner{Env: []string{"PATH=/usr/bin:/bin"}}).Run(context.Background(), st, &e, msg)
	}()
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(now, syscall.SIGKILL)
	if r := <-done; r.Err != nil || len(r.Headers) != 1 || r.Headers[0] == fmt.Sprintf("X-Done: %d", now) || r.Headers[0] == fmt.Sprintf("X-Done: %d", os.Getpid()) {
		t.Errorf("a run of the resident supervisor %d killed under it: %v %q", now, r.Err, r.Headers)
	}
}

// TestResidentSameAsExec: a stage started by the resident supervisor gets
// the arguments and environment one exec'd gets, byte for byte, however
// odd the envelope values in it.
func TestResidentSameAsExec(t *testing.T) {
	if os.Getenv("MF_CHAIN_TEST_SUPERVISOR") == "" {
		t.Skip("runs inside TestCSupervisor, with the C mf-stage-supervisor")
	}
	out := t.TempDir()
	st, err := Parse("t data input=message output=exit -- " + script(t, `n=$(ls "$OUT" | grep -c ^env); env -0 >"$OUT/env.$n"; printf '%s\0' "$0" "$@" >"$OUT/args.$n"; cat >/dev/null`) + ` 'a b' '' x=y`)
	if err != nil {
		t.Fatal(err)
	}
	// Later values win, as os/exec has it.
	r := &Runner{Env: []string{"PATH=/nonexistent", "OUT=" + out, "PATH=/usr/bin:/bin"}}
	e := env
	e.Helo = "h.example\nX-Evil: 1\x00x"
	e.MailFrom = "a=b@example.org"
	e.ClientName = strings.Repeat("\xe9", 4000)
	msg := spooled(t, "Subject: x\n\nbody\n")
	defer KeepSupervisor()
	for _, on := range []bool{true, false} { // through the resident supervisor, then exec'd
		residents.mu.Lock()
		residents.on = on
		residents.mu.Unlock()
		e := e
		if res := r.Run(context.Background(), st, &e, msg); res.Err != nil {
			t.Fatalf("run: %v", res.Err)
		}
	}
	for _, f := range []string{"env", "args"} {
		a, _ := os.ReadFile(filepath.Join(out, f+".0"))
		b, _ := os.ReadFile(filepath.Join(out, f+".1"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes through the resident supervisor, %d exec'd, or not the same", f, len(a), len(b))
		}
	}
	a, _ := os.ReadFile(filepath.Join(out, "env.0"))
	if !bytes.Contains(a, []byte("\x00PATH=/usr/bin:/bin\x00")) || bytes.Contains(a, []byte("/nonexistent")) {
		t.Errorf("PATH given twice: the later value is not the one the stage has")
	}
	if !bytes.Contains(a, []byte("\x00HELO=h.example%0AX-Evil: 1%00x\x00")) {
		t.Errorf("HELO: not as encoded for the environment")
	}
}

// TestDedupEnv: the last of a name's values is the one kept, as os/exec
// keeps it (a shell dedups by itself; a C program's getenv takes the
// first).
func TestDedupEnv(t *testing.T) {
	got := strings.Join(dedupEnv([]string{"PATH=/nonexistent", "A=1", "PATH=/usr/bin", "B", "A=2=3"}), " ")
	if want := "PATH=/usr/bin B A=2=3"; got != want {
		t.Errorf("dedupEnv: %q, want %q", got, want)
	}
}

// cSupervisor builds the C mf-stage-supervisor as make does (etc/cc)
// into a directory any user may enter, cSupervisorDir, once per test
// binary.
var cSupervisorDir string

var cSupervisor = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mf-supervisor")
	if err != nil {
		return "", err
	}
	cSupervisorDir = dir
	os.Chmod(dir, 0o755)
	sv := filepath.Join(dir, "mf-stage-supervisor")
	if out, err := exec.Command("sh", "../../etc/cc", sv, "../../cmd/mf-stage-supervisor/c/mf-stage-supervisor.c").CombinedOutput(); err != nil {
		return "", fmt.Errorf("etc/cc: %v\n%s", err, out)
	}
	return sv, nil
})

// FuzzResidentRequest sends the resident C supervisor packets of any
// bytes, with a run's five descriptors: each is answered on its status
// pipe by "+" and one status line, or by nothing but "+" if it was
// never a run, and the supervisor still takes the next well-formed one.
// The only program a packet can name is /bin/true (others are skipped),
// and the supervisor runs as nobody in an empty directory.
func FuzzResidentRequest(f *testing.F) {
	good := "6\x00mf-stage-supervisor\x000\x00-\x00/bin/true\x00true\x00x\x00X=1\x00"
	for _, s := range []string{good, "", "\x00", "6\x00", "x\x00", "99\x00a\x00", "4\x00a\x00b\x00c\x00d\x00",
		"6\x00mf-stage-supervisor\x00nope\x00-\x00/bin/true\x00true\x00x\x00",
		"6\x00mf-stage-supervisor\x000\x001:2:3,x\x00/bin/true\x00true\x00x\x00",
		"6\x00mf-stage-supervisor\x000\x00-\x00true\x00true\x00x\x00", good[:len(good)-1]} {
		f.Add([]byte(s))
	}
	sv, err := cSupervisor()
	if err != nil {
		if os.Getenv("CI") == "true" {
			f.Fatal(err)
		}
		f.Skip("the C mf-stage-supervisor could not be built: ", err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		f.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	lifeR, lifeW, _ := os.Pipe()
	cmd := exec.Command(sv, "-resident")
	cmd.Dir = filepath.Dir(sv)
	cmd.ExtraFiles = []*os.File{theirs, lifeR}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := cmd.Start(); err != nil {
		f.Fatal(err)
	}
	theirs.Close()
	lifeR.Close()
	f.Cleanup(func() { lifeW.Close(); ours.Close(); cmd.Wait() })
	c, err := net.FileConn(ours)
	if err != nil {
		f.Fatal(err)
	}
	conn := c.(*net.UnixConn)
	if b := make([]byte, 1); func() bool { n, _ := conn.Read(b); return n != 1 }() {
		f.Fatal("the resident supervisor did not say it was ready")
	}
	// send sends req with a run's descriptors, and returns the status.
	send := func(t *testing.T, req []byte) string {
		null, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		defer null.Close()
		runR, runW, _ := os.Pipe()
		defer runW.Close()
		status, statusW, _ := os.Pipe()
		defer status.Close()
		rights := syscall.UnixRights(int(null.Fd()), int(null.Fd()), int(null.Fd()), int(runR.Fd()), int(statusW.Fd()))
		_, _, err := conn.WriteMsgUnix(req, rights, nil)
		runR.Close()
		statusW.Close()
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		status.SetReadDeadline(time.Now().Add(10 * time.Second))
		said, err := io.ReadAll(status)
		if err != nil {
			t.Fatalf("status: %v (%q so far)", err, said)
		}
		return string(said)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) == 0 {
			return // a zero-length packet reads as the bridge closing its end
		}
		if strings.Contains(strings.ReplaceAll(string(req), "/bin/true", ""), "/") {
			t.Skip("names a program other than /bin/true")
		}
		said := send(t, req)
		rest, ok := strings.CutPrefix(said, "+")
		switch {
		case !ok:
			t.Fatalf("status %q: not taken", said)
		case rest == "", sscan(rest, "exit %d", new(int)), sscan(rest, "signal %d", new(int)), sscan(rest, "start %d", new(int)):
		default:
			t.Fatalf("status %q: no status line", said)
		}
		if got := send(t, []byte(good)); got != "+exit 0" {
			t.Fatalf("after %q, a good request: %q", req, got)
		}
	})
}
