package main

import (
	"runtime"
	"runtime/debug"
	"sync"

	"mf/cmd/mf-accept/mfaccept"
	"mf/cmd/mf-lists/mflists"
	"mf/cmd/mf-quota/mfquota"
	"mf/cmd/mf-scan/mfscan"
	"mf/lib/chain"
)

// commands are mf's own commands a stage runs inside mf-bridge's process
// when its program has that base name (and not exec=yes): the same run
// function as the command's main, without a process start per message.
var commands = map[string]chain.Command{
	"mf-accept": mfaccept.Run,
	"mf-lists":  mflists.Run,
	"mf-quota":  mfquota.Run,
	"mf-scan":   mfscan.Run,
}

// users counts the sessions of a generation, so that what its in-process
// stages keep open is closed once it is replaced and its last session
// has ended.
type users struct {
	mu      sync.Mutex
	n       int
	retired bool
	closed  bool
}

// acquire returns the current generation, held for one session.
func (srv *server) acquire() *generation {
	for {
		g := srv.gen.Load()
		g.users.mu.Lock()
		if !g.users.closed {
			g.users.n++
			g.users.mu.Unlock()
			return g
		}
		g.users.mu.Unlock() // replaced and closed meanwhile: take the new one
	}
}

// release ends one session's hold on g.
func (g *generation) release() {
	g.users.mu.Lock()
	defer g.users.mu.Unlock()
	g.users.n--
	g.closeIfDone()
}

// retire says g is no longer the current generation.
func (g *generation) retire() {
	g.users.mu.Lock()
	defer g.users.mu.Unlock()
	g.users.retired = true
	g.closeIfDone()
}

func (g *generation) closeIfDone() {
	u := &g.users
	if u.retired && u.n == 0 && !u.closed {
		u.closed = true
		if err := g.cfg.Chain.Runner.Resident.Close(); err != nil {
			g.cfg.Log.Warnf("closing what in-process stages kept open: %v", err)
		}
	}
}

// tuneRuntime sets how the Go runtime runs a server (milter, policy,
// qmail-server), where the environment does not set it itself:
//   - GOGC 400: the heap grows to five times the live data between
//     collections. In-process stages allocate for every message (streams
//     read and written, envelopes parsed), and the few MiB more it costs
//     save most of the collector's work.
//   - GOMAXPROCS 1 where the runtime would run two threads (a machine or
//     container of one or two cores, which the bridge shares with its
//     MTA): between two milter packets the idle thread spins looking for
//     work and the runtime hands work from one thread to the other. Beside
//     Postfix on two cores the bridge then spends 18-24% less CPU a
//     message (t/bench-postfix). With more cores the runtime's own choice
//     stands, untested here.
func tuneRuntime(lookupEnv func(string) (string, bool)) {
	if _, ok := lookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	def := runtime.GOMAXPROCS(0)
	if n := threads(lookupEnv, def); n != def {
		runtime.GOMAXPROCS(n)
	}
}

// threads is how many threads a server runs Go code on, given the
// runtime's default: one instead of two, unless GOMAXPROCS is set.
func threads(lookupEnv func(string) (string, bool), def int) int {
	if v, _ := lookupEnv("GOMAXPROCS"); v != "" || def != 2 {
		return def
	}
	return 1
}
