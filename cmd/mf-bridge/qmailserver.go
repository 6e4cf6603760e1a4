package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mf/lib/cli"
	"mf/lib/qmail"
)

// qmailServerCmd is the qmail-queue mode kept resident: the program
// QMAILQUEUE names is mf-qmail-queue-client, a small C program that
// hands this server its descriptors and environment over a unix socket
// and then exits with the status it is told, or becomes the real
// qmail-queue on the message and envelope it is handed back. The chain
// is read once, not per message, and no Go program starts per message.
type qmailServerCmd struct {
	qmailQueueCmd
	QmailListen string `default:"unix:/run/mf-bridge/qmail.sock" placeholder:"unix:PATH" help:"The unix socket mf-qmail-queue-client connects to (its MF_QMAIL_SOCKET, or the path it was built with)."`
	SocketOwner string `placeholder:"USER[:GROUP]" help:"Owner of the socket, so the user qmail-smtpd runs as can reach it (e.g. mf:qmail)."`
	SocketMode  string `default:"0660" placeholder:"MODE" help:"Permissions of the socket, in octal."`

	ShutdownTimeout time.Duration `default:"30s" help:"On SIGTERM, how long messages under way may take to finish; then their stages are ended and qmail-smtpd says 451."`
}

// The client's request is at most this long: "fds=..." and its
// environment, each ended by a NUL.
const qmailRequestMax = 64 << 10

// Run serves clients until SIGTERM; SIGHUP reloads the configuration,
// for the messages after it.
func (cmd *qmailServerCmd) Run(env *cli.Env, c *root) error {
	if !strings.HasPrefix(cmd.QmailListen, "unix:") {
		return fmt.Errorf("qmail-listen %q: the qmail server listens on a unix socket only (unix:PATH): descriptors pass over nothing else", cmd.QmailListen)
	}
	srv, err := start(env, c, "")
	if err != nil {
		return err
	}
	tuneRuntime(env.LookupEnv)
	ln, err := listen(cmd.QmailListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := ownSocket(cmd.QmailListen, cmd.SocketOwner, cmd.SocketMode); err != nil {
		return err
	}
	if err := srv.checkAll(env.Ctx, srv.gen.Load()); err != nil {
		return err
	}
	closeRecords, err := srv.settle(c.User, cmd.DecisionLog)
	if err != nil {
		return err
	}
	defer closeRecords()

	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	defer srv.onSignals(ctx, env.Args, env.LookupEnv, func(sig string) {
		srv.log.Infof("%s: no new messages; waiting up to %s for %d under way", sig, cmd.ShutdownTimeout, srv.inFlight.Load())
		ln.Close()
	})()
	srv.log.Infof("qmail-server: listening on %s with %d stage(s)", ln.Addr(), len(srv.gen.Load().cfg.Chain.Stages))
	conns := srv.accept(ln, func(conn net.Conn) { srv.qmailConn(ctx, conn.(*net.UnixConn), cmd, c.SpoolDir) })
	// A message under way may finish: its client is waiting. At the
	// deadline its stages are ended, and it is refused for now.
	done := make(chan struct{})
	go func() { conns.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cmd.ShutdownTimeout):
		srv.log.Warnf("%d message(s) still under way at the deadline: their stages are ended and qmail-smtpd told 451", srv.inFlight.Load())
		cancel()
		<-done
	}
	srv.gen.Load().retire()
	srv.log.Infof("stopped")
	return nil
}

// qmailRequest is what a client handed over: its descriptors by the
// number they had there, and its environment.
type qmailRequest struct {
	files map[int]*os.File
	env   map[string]string
}

func (r *qmailRequest) close() {
	for _, f := range r.files {
		f.Close()
	}
}

// readQmailRequest reads one client's request: the descriptors ride on
// its first bytes, the rest follows until the client shuts its side.
func readQmailRequest(conn *net.UnixConn) (*qmailRequest, error) {
	req := &qmailRequest{files: map[int]*os.File{}}
	buf := make([]byte, 4<<10) // a request is a few hundred bytes
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if rights, err := syscall.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
		if perr != nil && err == nil {
			err = perr
		}
	}
	// Owned from here on, whatever else went wrong.
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "client-fd")
	}
	fail := func(e error) (*qmailRequest, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, e
	}
	if err != nil {
		return fail(err)
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		return fail(errors.New("more descriptors than a client sends"))
	}
	rest, err := io.ReadAll(io.LimitReader(conn, int64(qmailRequestMax+1-n)))
	if err != nil {
		return fail(err)
	}
	data := append(buf[:n], rest...)
	if len(data) > qmailRequestMax {
		return fail(fmt.Errorf("request longer than %d bytes", qmailRequestMax))
	}
	nums, env, err := parseQmailRequest(data)
	if err != nil {
		return fail(err)
	}
	if len(nums) != len(files) {
		return fail(fmt.Errorf("request names %d descriptors and carries %d", len(nums), len(files)))
	}
	for i, fd := range nums {
		req.files[fd] = files[i]
	}
	req.env = env
	return req, nil
}

// parseQmailRequest splits a request: "fds=0,1[,N...]" and then
// NAME=VALUE entries, each ended by a NUL. It gives the descriptor
// numbers in the order they were sent, and the environment (an entry
// without "=" is left out, as getenv would never find it).
func parseQmailRequest(data []byte) ([]int, map[string]string, error) {
	entries := bytes.Split(data, []byte{0})
	if len(entries) < 2 || len(entries[len(entries)-1]) != 0 {
		return nil, nil, errors.New("request not ended by a NUL")
	}
	list, ok := strings.CutPrefix(string(entries[0]), "fds=")
	if !ok {
		return nil, nil, errors.New("request does not start with fds=")
	}
	var nums []int
	seen := map[int]bool{}
	for _, s := range strings.Split(list, ",") {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 0 || fd > 1023 || seen[fd] {
			return nil, nil, fmt.Errorf("bad descriptor list %q", list)
		}
		seen[fd] = true
		nums = append(nums, fd)
	}
	if !seen[0] || !seen[1] {
		return nil, nil, errors.New("request without descriptors 0 and 1")
	}
	env := map[string]string{}
	for _, e := range entries[1 : len(entries)-1] {
		if k, v, ok := strings.Cut(string(e), "="); ok {
			env[k] = v
		}
	}
	return nums, env, nil
}

// qmailConn is one message: the chain runs on the client's fd 0 and
// fd 1, under its environment, and the client is answered "exit CODE",
// or "queue PATH" with the message and envelope to hand the real
// qmail-queue. An answer that cannot be given leaves the client with a
// closed socket, which it takes as 71: the message is sent again.
func (srv *server) qmailConn(ctx context.Context, conn *net.UnixConn, cmd *qmailServerCmd, spoolDir string) {
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			srv.log.Errorf("qmail-server: internal error: %v; client told 71", p)
			fmt.Fprintf(conn, "exit %d\n", qmail.ExitTemp)
		}
	}()
	// The request comes at once; the message on fd 0 may take as long
	// as qmail-smtpd's client takes to send it.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := readQmailRequest(conn)
	if err != nil {
		srv.log.Errorf("qmail-server: %v", err)
		fmt.Fprintf(conn, "exit %d\n", qmail.ExitTemp)
		return
	}
	defer req.close()
	errorFD := -1
	if f := req.files[cmd.ErrorFD]; f != nil && cmd.ErrorFD > 2 {
		errorFD = int(f.Fd())
	}
	g := srv.acquire()
	defer g.release()
	cfg := *g.cfg
	cfg.Hidden = 0 // qmail keeps nothing above the header it hands on
	q := &qmailRun{cfg: &cfg, c: &cmd.qmailQueueCmd, spoolDir: spoolDir, stderr: io.Discard, errorFD: errorFD}
	q.handOff = func(path string, msg *os.File, env *qmail.Envelope) int {
		ef, err := qmail.EnvelopeFile(env)
		if err != nil {
			cfg.Log.Errorf("%v", err)
			return qmail.ExitWrite
		}
		defer ef.Close()
		// A file description of the client's own, read-only and at the
		// first byte: this one's offset moves as the session ends.
		own, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", msg.Fd()))
		if err != nil {
			cfg.Log.Errorf("spool: %v", err)
			return qmail.ExitWrite
		}
		defer own.Close()
		rights := syscall.UnixRights(int(own.Fd()), int(ef.Fd()))
		if _, _, err := conn.WriteMsgUnix([]byte("queue "+path+"\n"), rights, nil); err != nil {
			cfg.Log.Errorf("qmail-server: answer: %v", err)
		}
		return handedOff
	}
	lookup := func(k string) (string, bool) { v, ok := req.env[k]; return v, ok }
	code := q.run(ctx, req.files[0], req.files[1], lookup)
	if code == handedOff {
		return
	}
	if _, err := fmt.Fprintf(conn, "exit %d\n", code); err != nil {
		srv.log.Errorf("qmail-server: answer: %v", err)
	}
}
