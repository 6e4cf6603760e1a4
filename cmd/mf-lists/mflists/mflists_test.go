package mflists

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mf/lib/cli"
	"mf/lib/lists"
	"mf/lib/logger"
	"mf/lib/redistest"
	"mf/lib/resident"
	"mf/lib/state"
)

// lists runs mf-lists as its main would, with env as the whole
// environment.
func mfLists(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = Run(context.Background(), strings.NewReader(stdin), &out, &errOut, args, lookup)
	return code, out.String(), errOut.String()
}

func listFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "block.list")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const msg = "From: a@example.org\nSubject: x\n\nbody\n"

func TestEverySubCommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without a Run method: %v", m)
	}
}

func TestCheck(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\nreply: 550 5.7.1 Go away\n192.0.2.0/24\n")
	env := map[string]string{"MF_CONFIG": "/dev/null"}
	for _, c := range []struct {
		client string
		code   int
		out    string
	}{
		{"192.0.2.7", 100, "Mf-Verdict: reject 550 5.7.1 Go away"},
		{"203.0.113.1", 0, "Mf-Trace: mf-lists continue"},
	} {
		code, out, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", block, "check", "--client", c.client)
		if code != c.code || !strings.Contains(out, c.out) || !strings.HasSuffix(out, msg) {
			t.Errorf("client %s: exit %d (want %d), stdout %q, stderr %q", c.client, code, c.code, out, errOut)
		}
	}
	// A missing list is an error, never a verdict.
	if code, _, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", "/nonexistent.list", "check"); code != 75 || errOut == "" {
		t.Errorf("missing list: exit %d, stderr %q", code, errOut)
	}
}

// A decided stream with a pending field, written as a bare message: the
// field goes into the message (no envelope is left to carry it), as
// mf-quota does too.
func TestDecidedStreamMessageMode(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\n192.0.2.0/24\n")
	in := "Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 550 5.7.1 No\nMf-Add-Header: X-Earlier: yes\n\n" + msg
	code, out, errOut := mfLists(t, map[string]string{"MF_CONFIG": "/dev/null"}, in, "--state-dir", "", "--list", block, "check", "--input", "stream", "--output", "message")
	if code != 100 || out != "X-Earlier: yes\n"+msg {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// MF_STAGE was a chain line for mf-bridge and an SMTP phase for mf-lists;
// one setting must not break the other. The phase is MF_PHASE now.
func TestMFStageIsNoPhase(t *testing.T) {
	block := listFile(t, "match: client-addr\naction: block\n192.0.2.0/24\n")
	env := map[string]string{"MF_CONFIG": "/dev/null", "MF_STAGE": "lists data mf-lists check"}
	if code, _, errOut := mfLists(t, env, msg, "--state-dir", "", "--list", block, "check", "--client", "192.0.2.1"); code != 100 {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	// --stage stays, hidden, as another name for --phase.
	code, out, _ := mfLists(t, map[string]string{"MF_CONFIG": "/dev/null"}, "", "--state-dir", "", "--list", block, "check", "--stage", "rcpt", "--client", "192.0.2.1", "--rcpt", "x@example.com")
	if code != 100 || !strings.Contains(out, "Mf-Stage: rcpt") {
		t.Errorf("--stage rcpt: exit %d, stdout %q", code, out)
	}
}

// TestDynamicKept: inside mf-bridge the dynamic lists are read from the
// state store once for each version of them (the file that holds them in
// a state directory, Redis's count of their changes), and again once an
// entry in them expires: an entry added or deleted counts at the next
// run, one that expires at the first run after.
func TestDynamicKept(t *testing.T) {
	stores := []struct{ name, url string }{{"dir", ""}}
	if url := redistest.Start(t); url != "" {
		stores = append(stores, struct{ name, url string }{"redis", url})
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			testDynamicKept(t, store.url)
		})
	}
}

func testDynamicKept(t *testing.T, url string) {
	dir := t.TempDir()
	st, err := state.Open(url, dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	set := resident.New()
	defer set.Close()
	kept := resident.With(ctx, set)
	empty := listFile(t, "match: client-addr\naction: block\n")
	check := func(client string) int {
		t.Helper()
		var out, errOut bytes.Buffer
		lookup := func(k string) (string, bool) { return map[string]string{"MF_CONFIG": "/dev/null"}[k], k == "MF_CONFIG" }
		code := Run(kept, strings.NewReader(msg), &out, &errOut, []string{"--state", url, "--state-dir", dir, "--list", empty, "check", "--client", client}, lookup)
		if code == 75 {
			t.Errorf("check %s: %s", client, errOut.String())
		}
		return code
	}
	add := func(addr string, ttl time.Duration) {
		t.Helper()
		if _, err := lists.AddDynamic(ctx, st, "block", addr, ttl, "test", "me"); err != nil {
			t.Fatal(err)
		}
	}
	// dynamic is the dynamic list the lists of a run end with.
	c := &root{List: []string{empty}, DynamicReply: "550 5.7.1 Access denied"}
	c.State, c.StateDir, c.LockTimeout = url, dir, time.Second
	dynamic := func() *lists.List {
		t.Helper()
		ls, err := c.load(kept, logger.New("mf-lists", io.Discard))
		if err != nil || len(ls) != 2 {
			t.Fatalf("load: %d lists, %v", len(ls), err)
		}
		return ls[1]
	}
	start := time.Now()
	add("192.0.2.7", time.Hour)
	add("192.0.2.8", 5*time.Second)
	time.Sleep(resident.Settle) // until then a file just written is read at each run
	if a, b := dynamic(), dynamic(); a != b {
		t.Error("the dynamic lists of an unchanged store were read again")
	}
	for _, c := range []struct {
		client string
		code   int
	}{{"192.0.2.7", 100}, {"192.0.2.8", 100}, {"192.0.2.9", 0}} {
		if code := check(c.client); code != c.code {
			t.Errorf("%s: exit %d, want %d", c.client, code, c.code)
		}
	}
	add("192.0.2.9", time.Hour)
	if code := check("192.0.2.9"); code != 100 {
		t.Errorf("192.0.2.9 just added: exit %d, want 100", code)
	}
	if ok, err := lists.DelDynamic(ctx, st, "block", "192.0.2.7"); !ok || err != nil {
		t.Fatalf("del: %v %v", ok, err)
	}
	if code := check("192.0.2.7"); code != 0 {
		t.Errorf("192.0.2.7 just deleted: exit %d, want 0", code)
	}
	// Settled, and kept again; then 192.0.2.8 expires with no write.
	time.Sleep(resident.Settle)
	if a, b := dynamic(), dynamic(); a != b {
		t.Error("the dynamic lists of an unchanged store were read again")
	}
	if code := check("192.0.2.8"); code != 100 {
		t.Errorf("192.0.2.8 before it expires: exit %d, want 100", code)
	}
	time.Sleep(time.Until(start.Add(5*time.Second + 100*time.Millisecond)))
	if code := check("192.0.2.8"); code != 0 {
		t.Errorf("192.0.2.8 expired: exit %d, want 0", code)
	}
	if code := check("192.0.2.9"); code != 100 {
		t.Errorf("192.0.2.9 after the other expired: exit %d, want 100", code)
	}
}
