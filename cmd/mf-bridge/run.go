package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"mf/lib/chain"
	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/stream"
	"mf/lib/verdict"
)

const description = `Run a chain of mf stages for each message: as a milter server for sendmail and Postfix, or by hand on a saved message.

The chain is the "stage" lines of mf.conf (bridge.stage), run in order at each SMTP phase until one decides. A stage line is

    NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]

with phases connect, helo, mail, rcpt, data and options timeout=, on-error=, input=, output=, reply=, always= and N=ACTION for exit code N; for example "lists rcpt,data mf-lists check". No shell runs it.

Exit status of "test": 0 continue, 99 accept, 100 reject, 111 tempfail, 75 error. See mf-bridge(8).`

type cli struct {
	config.Globals
	Stage       []string `sep:"none" placeholder:"LINE" help:"A stage of the chain, in order: \"NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]\" (see mf-bridge(8)); repeat for several."`
	User        string   `default:"mf" placeholder:"USER" help:"When started as root: the user to become once the socket is open. Stages never run as root."`
	SpoolDir    string   `type:"path" placeholder:"DIR" help:"Where a message and stage output are kept while filtered (default $$TMPDIR or /tmp); files there are unlinked at once."`
	DecisionLog string   `placeholder:"FILE" help:"Append one JSON line per decision to FILE (\"-\" is stdout); see DECISION RECORD in mf-bridge(8). Reopened on SIGHUP."`
	MTA         string   `enum:"auto,postfix,sendmail" default:"auto" help:"The MTA, for header insert positions: auto tells Postfix by its v macro."`

	Milter milterCmd `cmd:"" help:"Serve the milter protocol to sendmail or Postfix."`
	Test   testCmd   `cmd:"" help:"Run the chain on a message as the milter would, and print what the MTA would be told."`

	QmailQueue qmailQueueCmd `cmd:"" name:"qmail-queue" help:"Be the program QMAILQUEUE names: run the chain, then the real qmail-queue."`
	Quarantine quarantineCmd `cmd:"" help:"List, release or delete the messages the qmail-queue mode quarantined."`
	Policy     policyCmd     `cmd:"" help:"Serve Postfix's SMTPD policy delegation protocol."`
	Qfilter    qfilterCmd    `cmd:"" help:"Run a qmail-qfilter filter as a stage (output=stream)."`
}

type milterCmd struct {
	Listen          string        `default:"inet:127.0.0.1:7357" placeholder:"ADDR" help:"Where to listen: inet:HOST:PORT, inet6:[HOST]:PORT or unix:PATH."`
	SocketOwner     string        `placeholder:"USER[:GROUP]" help:"Owner of a unix socket, so the MTA can reach it (e.g. mf:postfix)."`
	SocketMode      string        `default:"0660" placeholder:"MODE" help:"Permissions of a unix socket, in octal."`
	ShutdownTimeout time.Duration `default:"30s" help:"On SIGTERM, how long messages under way may take to finish."`
}

type testCmd struct {
	Client     string   `group:"envelope" placeholder:"IP" help:"Client address."`
	ClientName string   `group:"envelope" placeholder:"HOST" help:"Verified client host name (default unknown)."`
	Helo       string   `group:"envelope" placeholder:"NAME" help:"HELO/EHLO name."`
	AuthUser   string   `group:"envelope" placeholder:"USER" help:"SMTP AUTH user."`
	From       string   `group:"envelope" placeholder:"ADDR" help:"Envelope sender (default the null sender)."`
	Rcpt       []string `group:"envelope" sep:"none" placeholder:"ADDR" help:"Envelope recipient; repeat for several, each decided on at RCPT."`
	QueueID    string   `group:"envelope" placeholder:"ID" help:"Queue id the MTA would give."`
	File       string   `arg:"" optional:"" type:"path" help:"The message (\"-\" or none: stdin). A stream gives the envelope the flags do not."`
}

// bridge is what every session shares.
type bridge struct {
	cfg      *cli
	log      *logger.Logger
	chain    atomic.Pointer[chain.Chain]
	rec      *recorder
	hidden   int
	inFlight atomic.Int64
	stdout   io.Writer
}

func (b *bridge) record(r *record) {
	if err := b.rec.write(r); err != nil {
		b.log.Errorf("decision log: %v", err)
	}
}

// logResult logs a stage that failed or decided.
func (b *bridge) logResult(env stream.Envelope, r *chain.Result) {
	id := queueID(env)
	switch {
	case r.Err != nil:
		msg := fmt.Sprintf("%s: stage %s at %s failed: %v; on-error gives %s", id, r.Stage.Name, r.Phase, r.Err, r.Verdict.Action)
		if r.Stderr != "" {
			msg += "; it said: " + lastLine(r.Stderr)
		}
		b.log.Warnf("%s", msg)
	case r.Verdict.Action.Final():
		b.log.Infof("%s: stage %s at %s: %s", id, r.Stage.Name, r.Phase, r.Verdict)
	default:
		b.log.Debugf("%s: stage %s at %s: %s in %s", id, r.Stage.Name, r.Phase, r.Verdict, r.Duration)
	}
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) (code int) {
	log := logger.New("mf-bridge", stderr)
	defer config.Recover(log, &code)
	c := &cli{}
	res, code, done := config.Start(c, &c.Globals, log, "mf-bridge", "bridge", description, args, stdout, stderr, lookupEnv)
	defer log.Close()
	if done {
		return code
	}
	b := &bridge{cfg: c, log: log, stdout: stdout}
	ch, err := newChain(c, res)
	if err != nil {
		log.Errorf("%v", err)
		return verdict.ExitError
	}
	b.chain.Store(ch)
	if c.MTA == "postfix" {
		b.hidden = 1
	}
	if f := b.frontEnd(res.Ctx.Command()); f != nil {
		code, err = f(ctx, stdin, stdout, stderr, lookupEnv)
	} else if res.Ctx.Command() == "milter" {
		err = b.serve(ctx, args, lookupEnv)
	} else {
		code, err = b.test(ctx, stdin, stdout)
	}
	if err != nil {
		log.Errorf("%v", err)
		return verdict.ExitError
	}
	return code
}

func parse(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (*cli, *config.Result, error) {
	var c cli
	res, err := config.Parse(&c, "mf-bridge", "bridge", description, args, stdout, stderr, lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	return &c, res, nil
}

// newChain reads the stage lines. Every error names where the line was.
func newChain(c *cli, res *config.Result) (*chain.Chain, error) {
	ch := &chain.Chain{Runner: &chain.Runner{TempDir: c.SpoolDir, Env: stageEnv(c)}}
	seen := map[string]string{}
	for i, line := range c.Stage {
		where := res.Origin("stage", i)
		if !strings.Contains(where, ":") {
			where = "--stage (" + where + ")"
		}
		st, err := chain.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if at, dup := seen[st.Name]; dup {
			return nil, fmt.Errorf("%s: stage %s: name already used at %s", where, st.Name, at)
		}
		seen[st.Name] = where
		ch.Stages = append(ch.Stages, st)
	}
	return ch, nil
}

// stageEnv is the environment stages start with: the bridge's own, and
// the configuration and state it uses, so mf stages read the same file
// and count in the same store. The runner adds the envelope; a later
// value of a name wins (os/exec), so nothing inherited can stand in for it.
func stageEnv(c *cli) []string {
	env := os.Environ()
	if _, err := os.Stat(c.Config); err == nil {
		env = append(env, "MF_CONFIG="+c.Config)
	}
	if c.StateDir != "" {
		env = append(env, "MF_STATE_DIR="+c.StateDir)
	}
	if c.State != "" {
		env = append(env, "MF_STATE="+c.State)
	}
	return env
}
