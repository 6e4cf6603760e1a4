package chain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mf/lib/stream"
	"mf/lib/verdict"
)

// TestMain lets the test binary play a bridge that runs one stage and
// waits to be killed (see TestBridgeDeathEndsStages).
func TestMain(m *testing.M) {
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
	os.Exit(m.Run())
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
			r := runStage(t, "output=exit", "cat >/dev/null; "+c.body+"; exit 0", spool(t, "S: x\n\nbody\n"))
			if r.Err != nil || r.Verdict.Action != verdict.Continue {
				t.Fatalf("%s %v (%s)", r.Verdict, r.Err, r.Stderr)
			}
			gone(t, c.name, pids(t, filepath.Join(dir, c.file)), time.Second)
		})
	}
}

func TestStderrHeldOpenDoesNotDelay(t *testing.T) {
	start := time.Now()
	r := runStage(t, "output=exit", "cat >/dev/null; sleep 30 & exit 0", spool(t, "S: x\n\nbody\n"))
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
	r := (&Runner{}).Run(ctx, st, &e, spool(t, "S: x\n\nbody\n"))
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
	o := c.Run(ctx, env, spool(t, "S: x\n\nbody\n"))
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
	r := (&Runner{}).Run(context.Background(), st, &e, spool(t, "S: x\n\n"))
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
	r := (&Runner{}).Run(context.Background(), st, &e, spool(t, "S: x\n\n"))
	if r.Err == nil || r.Verdict.Action != verdict.Tempfail {
		t.Errorf("a 200 KiB HELO with on-error=accept: %s %v", r.Verdict, r.Err)
	}
}
