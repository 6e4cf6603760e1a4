package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mf/lib/qmail"
)

func TestParseQmailRequest(t *testing.T) {
	nums, env, err := parseQmailRequest([]byte("fds=0,1,6\x00PROTO=TCP\x00TCPREMOTEIP=192.0.2.1\x00junk\x00X==y\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if len(nums) != 3 || nums[0] != 0 || nums[1] != 1 || nums[2] != 6 {
		t.Errorf("descriptors %v", nums)
	}
	if env["PROTO"] != "TCP" || env["TCPREMOTEIP"] != "192.0.2.1" || env["X"] != "=y" || len(env) != 3 {
		t.Errorf("environment %v", env)
	}
	for _, bad := range []string{
		"", "fds=0,1", "fds=0,1\x00A=b", "fd=0,1\x00", "fds=0\x00", "fds=1,6\x00",
		"fds=0,1,1\x00", "fds=0,-1,1\x00", "fds=0,1,x\x00", "fds=0,1,99999\x00", "fds=\x00",
	} {
		if _, _, err := parseQmailRequest([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseQmailRequest(f *testing.F) {
	f.Add([]byte("fds=0,1,6\x00PROTO=TCP\x00TCPREMOTEIP=192.0.2.1\x00"))
	f.Add([]byte("fds=0,1\x00\x00"))
	f.Add([]byte("fds=0,1,4,6\x00A\x00=\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nums, env, err := parseQmailRequest(data)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, n := range nums {
			if n < 0 || seen[n] {
				t.Fatalf("descriptor %d given back twice or negative: %v", n, nums)
			}
			seen[n] = true
		}
		if !seen[0] || !seen[1] {
			t.Fatalf("no 0 and 1 in %v", nums)
		}
		for k := range env {
			if strings.ContainsAny(k, "=\x00") {
				t.Fatalf("name %q", k)
			}
		}
	})
}

// qmailServer runs "mf-bridge qmail-server" on a socket in a temporary
// directory until the test ends.
func qmailServer(t testing.TB, conf string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "q.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var stderr bytes.Buffer
	go func() {
		defer wg.Done()
		lookup := func(k string) (string, bool) {
			if k == "MF_CONFIG" {
				return conf, true
			}
			return os.LookupEnv(k)
		}
		run(ctx, strings.NewReader(""), io.Discard, &stderr, []string{"qmail-server", "--qmail-listen", "unix:" + sock, "--shutdown-timeout", "1s", "--user", "nobody"}, lookup)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Fatalf("qmail-server did not listen: %s", stderr.String())
	return ""
}

type qmailAnswer struct {
	line      string // the answer line, without its newline
	msg, env  string // what the handed-back descriptors held
	custom    string // what was written on the custom error descriptor
	nReceived int
}

// askQmailServer is mf-qmail-queue-client in Go: msg and env on pipes as
// fds 0 and 1, a pipe as fd 6 when custom, the environment vars.
func askQmailServer(t testing.TB, sock, msg, env string, custom bool, vars map[string]string) qmailAnswer {
	t.Helper()
	pipe := func(s string) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { io.WriteString(w, s); w.Close() }()
		return r
	}
	mr, er := pipe(msg), pipe(env)
	defer mr.Close()
	defer er.Close()
	fds := []int{int(mr.Fd()), int(er.Fd())}
	list := "fds=0,1"
	var cr, cw *os.File
	if custom {
		var err error
		if cr, cw, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		defer cr.Close()
		fds = append(fds, int(cw.Fd()))
		list += ",6"
	}
	var req bytes.Buffer
	req.WriteString(list + "\x00")
	for k, v := range vars {
		req.WriteString(k + "=" + v + "\x00")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix(req.Bytes(), syscall.UnixRights(fds...), nil); err != nil {
		t.Fatal(err)
	}
	uc.CloseWrite()
	if cw != nil {
		cw.Close() // the server holds its own copy
	}
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	a := qmailAnswer{line: strings.TrimSuffix(string(buf[:n]), "\n")}
	msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
	var got []int
	for _, m := range msgs {
		r, _ := syscall.ParseUnixRights(&m)
		got = append(got, r...)
	}
	a.nReceived = len(got)
	if len(got) == 2 {
		m, e := os.NewFile(uintptr(got[0]), "msg"), os.NewFile(uintptr(got[1]), "env")
		b, _ := io.ReadAll(m)
		c, _ := io.ReadAll(e)
		m.Close()
		e.Close()
		a.msg, a.env = string(b), string(c)
	}
	if cr != nil {
		// The server closed its copy once it answered.
		b, _ := io.ReadAll(cr)
		a.custom = string(b)
	}
	return a
}

func TestQmailServer(t *testing.T) {
	conf := writeConf(t,
		"bridge.qmail-queue /var/qmail/bin/qmail-queue",
		`bridge.stage r rcpt output=exit 0=reject 1=continue reply="550 5.1.1 No such user" -- sh -c 'cat >/dev/null; [ "$RECIPIENT" = c@example.test ]'`,
		`bridge.stage block data input=message output=exit 0=reject 1=continue reply="550 5.7.1 Not this" -- grep -q "^Subject: block"`,
		`bridge.stage tag data input=message output=headers -- sh -c 'cat >/dev/null; echo "X-Tag: client=$TCPREMOTEIP"'`,
	)
	sock := qmailServer(t, conf)

	a := askQmailServer(t, sock, qqMsg, qqEnv, true, tcpEnv)
	if a.line != "queue /var/qmail/bin/qmail-queue" || a.nReceived != 2 {
		t.Fatalf("answer %q with %d descriptors", a.line, a.nReceived)
	}
	if !strings.Contains(a.msg, "\nX-Tag: client=192.0.2.1\n\nbody\n") || !strings.HasPrefix(a.msg, "Received: from unknown (HELO client.example.test)") {
		t.Errorf("message handed back:\n%s", a.msg)
	}
	// c@ was refused: left out of what is handed on.
	if a.env != "Fa@example.org\x00Tb@example.test\x00\x00" {
		t.Errorf("envelope handed back %q", a.env)
	}
	if a.custom != "" {
		t.Errorf("custom text %q on a message passed", a.custom)
	}

	blocked := strings.Replace(qqMsg, "Subject: hello", "Subject: block", 1)
	a = askQmailServer(t, sock, blocked, qqEnv, true, tcpEnv)
	if a.line != "exit 82" || a.custom != "D5.7.1 Not this" || a.nReceived != 0 {
		t.Errorf("refused with fd 6: %q custom %q, %d descriptors", a.line, a.custom, a.nReceived)
	}
	a = askQmailServer(t, sock, blocked, qqEnv, false, tcpEnv)
	if a.line != "exit 31" {
		t.Errorf("refused without fd 6: %q", a.line)
	}
	a = askQmailServer(t, sock, qqMsg, "Fa@example.org\x00Tb@example.test\x00", true, tcpEnv)
	if a.line != "exit 91" {
		t.Errorf("malformed envelope: %q, want qmail-queue's 91", a.line)
	}
}

func TestQmailServerBadRequest(t *testing.T) {
	sock := qmailServer(t, writeConf(t, ""))
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "fds=0,1\x00")
	conn.(*net.UnixConn).CloseWrite()
	b, _ := io.ReadAll(conn)
	if string(b) != "exit 71\n" {
		t.Errorf("request without descriptors: %q, want exit 71", b)
	}
	if qmail.ExitTemp != 71 {
		t.Fatal("qmail.ExitTemp moved")
	}
}
