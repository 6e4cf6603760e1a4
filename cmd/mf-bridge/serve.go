package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/logger"
)

// serve runs the milter server until SIGTERM or SIGINT.
func (srv *server) serve(ctx context.Context, args []string, lookupEnv func(string) (string, bool)) error {
	g := srv.gen.Load()
	c := g.cli
	tuneRuntime(lookupEnv)
	// go-milter logs through the standard logger.
	log.SetFlags(0)
	log.SetOutput(logWriter{srv.log})

	ln, err := listen(c.Milter.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	mln, err := srv.metrics.listen(c.Milter.Metrics)
	if err != nil {
		return err
	}
	if mln != nil {
		defer mln.Close()
		srv.log.Infof("metrics on http://%s/metrics", mln.Addr())
	}
	if err := ownSocket(c.Milter.Listen, c.Milter.SocketOwner, c.Milter.SocketMode); err != nil {
		return err
	}
	// Checked while still root, if started so: as the stage user.
	if err := srv.checkAll(ctx, g); err != nil {
		return err
	}
	closeRecords, err := srv.settle(c.User, c.Milter.DecisionLog)
	if err != nil {
		return err
	}
	defer closeRecords()

	stopping := make(chan struct{})
	defer srv.onSignals(ctx, args, lookupEnv, func(sig string) {
		srv.log.Infof("%s: no new connections; waiting up to %s for %d message(s) under way", sig, c.Milter.ShutdownTimeout, srv.inFlight.Load())
		close(stopping)
		ln.Close()
	})()

	// Cancelled at the shutdown deadline: every stage still running ends,
	// with all it started, and its message is tempfailed (lib/chain).
	stageCtx, stopStages := context.WithCancel(ctx)
	defer stopStages()

	srv.log.Infof("listening on %s:%s with %d stage(s)", ln.Addr().Network(), ln.Addr(), len(g.cfg.Chain.Stages))
	if sv, own := chain.Supervisor(); own {
		srv.log.Warnf("stages are started through %s: a few milliseconds more for every stage run (mf-stage-supervisor(8))", sv)
	} else {
		srv.log.Debugf("stages are started through %s", sv)
	}
	conns := srv.accept(ln, func(conn net.Conn) {
		srv.metrics.session(1)
		defer srv.metrics.session(-1)
		srv.serveConn(stageCtx, conn)
	})
	<-stopping
	deadline := time.Now().Add(c.Milter.ShutdownTimeout)
	for srv.inFlight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := srv.inFlight.Load(); n > 0 {
		srv.log.Warnf("%d message(s) still under way at the deadline: their stages are ended and the MTA told to retry", n)
		stopStages()
		// A moment for the tempfail replies to reach the MTA.
		for end := time.Now().Add(2 * time.Second); srv.inFlight.Load() > 0 && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Idle MTA connections hold no message; closing them loses nothing.
	conns.closeAll()
	conns.wait()
	srv.gen.Load().retire()
	srv.log.Infof("stopped")
	return nil
}

// settle drops root for user, as a server does once its socket is open,
// opens the decision log as that user, and keeps a stage supervisor
// running for the stage runs to come (chain.KeepSupervisor). The
// function it returns ends that supervisor and closes the log of the
// generation current by then.
func (srv *server) settle(user, decisionLog string) (func(), error) {
	if ownProcess {
		if err := srv.dropPrivileges(user); err != nil {
			return nil, err
		}
	}
	rec, err := bridge.OpenRecorder(decisionLog, srv.stdout)
	if err != nil {
		return nil, err
	}
	srv.gen.Load().cfg.Records = rec
	chain.KeepSupervisor()
	return func() {
		chain.EndSupervisor()
		srv.gen.Load().cfg.Records.Close()
	}, nil
}

// onSignals reloads the configuration on SIGHUP until SIGTERM or
// SIGINT, when it calls stop once, with the signal's name, and is done;
// ctx done is a stop too. The function it returns stops the watching.
func (srv *server) onSignals(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stop func(why string)) func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				stop("cancelled")
				return
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					srv.reload(args, lookupEnv)
					continue
				}
				stop(sig.String())
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// connections are the open connections of a listener, each served in a
// goroutine of its own.
type connections struct {
	mu sync.Mutex
	m  map[net.Conn]struct{} // a plain map: each stored and deleted once, which sync.Map is slow at
	wg sync.WaitGroup
}

// accept serves each connection of ln with handle until ln is closed.
func (srv *server) accept(ln net.Listener, handle func(net.Conn)) *connections {
	cs := &connections{m: map[net.Conn]struct{}{}}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return cs
			}
			srv.log.Errorf("accept: %v", err)
			time.Sleep(100 * time.Millisecond) // out of descriptors: let some close
			continue
		}
		cs.wg.Add(1)
		cs.mu.Lock()
		cs.m[conn] = struct{}{}
		cs.mu.Unlock()
		go func() {
			defer cs.wg.Done()
			defer func() {
				cs.mu.Lock()
				delete(cs.m, conn)
				cs.mu.Unlock()
			}()
			handle(conn)
		}()
	}
}

// closeAll closes the connections still open.
func (cs *connections) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.m {
		c.Close()
	}
}

// wait waits until every connection's handler has returned.
func (cs *connections) wait() { cs.wg.Wait() }

// listen opens inet:HOST:PORT, inet6:[HOST]:PORT or unix:PATH (a stale
// socket left by a crash is replaced).
func listen(addr string) (net.Listener, error) {
	kind, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return nil, fmt.Errorf("listen %q: want inet:HOST:PORT, inet6:[HOST]:PORT or unix:PATH", addr)
	}
	switch kind {
	case "inet", "inet6", "tcp":
		network := "tcp4"
		if kind == "inet6" {
			network = "tcp6"
		}
		ln, err := net.Listen(network, rest)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return ln, nil
	case "unix", "local":
		if fi, err := os.Lstat(rest); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", rest); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: another server answers there", rest)
			}
			os.Remove(rest)
		}
		ln, err := net.Listen("unix", rest)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return ln, nil
	}
	return nil, fmt.Errorf("listen %q: unknown kind %q (want inet, inet6 or unix)", addr, kind)
}

// ownSocket gives a unix socket the owner and mode the MTA needs.
func ownSocket(addr, owner, modeText string) error {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		path, ok = strings.CutPrefix(addr, "local:")
	}
	if !ok {
		return nil
	}
	mode, err := strconv.ParseUint(modeText, 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("socket-mode %q: want an octal mode such as 0660", modeText)
	}
	if owner != "" {
		uid, gid, err := lookupOwner(owner)
		if err != nil {
			return fmt.Errorf("socket-owner: %w", err)
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return os.Chmod(path, os.FileMode(mode))
}

func lookupOwner(s string) (uid, gid int, err error) {
	name, group, _ := strings.Cut(s, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return 0, 0, err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

// dropPrivileges becomes --user when running as root, so neither the
// bridge nor any stage runs as root past this point.
func (srv *server) dropPrivileges(name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("user %q: %w: stages never run as root; create the user (useradd --system %s) or name another with --user", name, err, name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return fmt.Errorf("user %q is root: stages never run as root", name)
	}
	gids := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				gids = append(gids, g)
			}
		}
	}
	if err := syscall.Setgroups(gids); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	srv.log.Debugf("running as %s (uid %d, gid %d)", u.Username, uid, gid)
	return nil
}

// reload reads the configuration anew and builds a new generation by the
// same function as at start. A bad one is refused and the one in use kept.
// New connections get the new one; those under way finish with theirs.
func (srv *server) reload(args []string, lookupEnv func(string) (string, bool)) {
	old := srv.gen.Load()
	c, res, err := parse(args, srv.stdout, srv.stdout, lookupEnv)
	var g *generation
	if err == nil {
		g, err = srv.newGeneration(c, res, lookupEnv)
	}
	if err == nil {
		err = srv.checkAll(context.Background(), g)
	}
	if err == nil && c.Milter.DecisionLog != old.cli.Milter.DecisionLog {
		g.cfg.Records, err = bridge.OpenRecorder(c.Milter.DecisionLog, srv.stdout)
	} else if err == nil {
		g.cfg.Records = old.cfg.Records
		if e := g.cfg.Records.Reopen(); e != nil {
			srv.log.Errorf("%v", e)
		}
	}
	if err != nil {
		srv.log.Errorf("SIGHUP: configuration refused, the old one stays: %v", err)
		srv.metrics.reload(false)
		if g == nil || g.cfg.Records != old.cfg.Records {
			// A rotated log is still let go of.
			if e := old.cfg.Records.Reopen(); e != nil {
				srv.log.Errorf("%v", e)
			}
		}
		return
	}
	srv.gen.Store(g)
	srv.metrics.reload(true)
	old.retire()
	if g.cfg.Records != old.cfg.Records {
		// Sessions under way still hold the old one; a record written
		// to it after this is lost to the new path but lands in the old
		// file's inode, so it is left open.
		srv.log.Infof("SIGHUP: decision log now %s", c.Milter.DecisionLog)
	}
	srv.log.Infof("SIGHUP: configuration reloaded: %d stage(s), for new connections", len(g.cfg.Chain.Stages))
}

// logWriter sends go-milter's log lines to the bridge's log.
type logWriter struct{ log *logger.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warnf("milter: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}
