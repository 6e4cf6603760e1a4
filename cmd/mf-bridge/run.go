package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/cli"
	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/resident"
)

const description = `Run a chain of mf stages for each message: as a milter server for sendmail and Postfix, as qmail's qmail-queue, as a Postfix policy server, from a .qmail line, or by hand on a saved message.

The chain is the "stage" lines of mf.conf (bridge.stage), run in order at each SMTP phase until one decides. A stage line is

    NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]

with phases connect, helo, mail, rcpt, data and options timeout=, on-error=, input=, output=, reply=, always=, exec= and N=ACTION for exit code N; for example "lists rcpt,data mf-lists check". No shell runs it.

"check" checks the whole configuration, every mf command's section by the command itself, as "milter" does at start and on SIGHUP. "test" leaves the state store as it was unless --live. "status" shows what a running milter has done, from its metrics (bridge.metrics HOST:PORT). Each decision record (bridge.decision-log) says why, stage by stage.

Exit status of "test": 0 continue, 99 accept, 100 reject, 111 tempfail, 75 error; of "check": 0 good, 75 not. See mf-bridge(8) and mf(7).`

type root struct {
	config.Globals
	Stage       []string `sep:"none" placeholder:"LINE" help:"A stage of the chain, in order: \"NAME PHASE[,PHASE...] [OPTION=VALUE...] [--] PROGRAM [ARG...]\" (see mf-bridge(8)); repeat for several."`
	User        string   `default:"mf" placeholder:"USER" help:"When started as root: the user to become once the socket is open. Stages never run as root."`
	StageUser   string   `default:"mf-stage" placeholder:"USER" help:"When started as root: the user stages run as, other than --user, so no stage can reach the bridge or another message."`
	SpoolDir    string   `type:"path" placeholder:"DIR" help:"Where a message and stage output over 1 MiB are kept while filtered (default $$TMPDIR or /tmp; smaller ones are kept in memory); files there are unlinked at once."`
	TraceHeader string   `placeholder:"NAME" help:"Add the header field NAME (e.g. X-Mf-Checked) to accepted mail, naming this host and each stage that ran and what it said; none by default."`
	MTA         string   `enum:"auto,postfix,sendmail" default:"auto" help:"The MTA, for header insert positions: auto tells Postfix and sendmail by their v macro."`

	Milter milterCmd `cmd:"" help:"Serve the milter protocol to sendmail or Postfix."`
	Test   testCmd   `cmd:"" help:"Run the chain on a message as the milter would, and print what the MTA would be told; the state store is only read (see --live)."`

	QmailQueue  qmailQueueCmd  `cmd:"" name:"qmail-queue" help:"Be the program QMAILQUEUE names: run the chain, then the real qmail-queue."`
	QmailServer qmailServerCmd `cmd:"" name:"qmail-server" help:"Be the qmail-queue mode resident, for mf-qmail-queue-client as the program QMAILQUEUE names: no process of mf-bridge per message."`
	Quarantine  quarantineCmd  `cmd:"" help:"List, release or delete the messages the qmail-queue mode quarantined."`
	Policy      policyCmd      `cmd:"" help:"Serve Postfix's SMTPD policy delegation protocol."`
	Qfilter     qfilterCmd     `cmd:"" help:"Run a qmail-qfilter filter as a stage (output=stream)."`
	DotQmail    dotQmailCmd    `cmd:"" name:"dot-qmail" help:"Run the chain from a .qmail program line, in qmail-command's exit codes."`

	Status statusCmd `cmd:"" help:"Show what a running mf-bridge milter has done, from its metrics (bridge.metrics): decisions, stage runs and failures, reloads."`
	Check  checkCmd  `cmd:"" help:"Check the whole configuration, as milter start and SIGHUP do: every key of mf.conf, every stage line and program, every mf command's section (lists, rules, state store); exit 0 if good, 75 if not."`
}

// records is the decision log of the front-ends that serve mail (not
// test, which leaves none).
type records struct {
	DecisionLog string `placeholder:"FILE" help:"Append one JSON line per decision to FILE (\"-\" is stdout); see DECISION RECORD in mf-bridge(8). Reopened on SIGHUP."`
}

type milterCmd struct {
	Listen          string        `default:"inet:127.0.0.1:7357" placeholder:"ADDR" help:"Where to listen: inet:HOST:PORT, inet6:[HOST]:PORT or unix:PATH."`
	SocketOwner     string        `placeholder:"USER[:GROUP]" help:"Owner of a unix socket, so the MTA can reach it (e.g. mf:postfix)."`
	SocketMode      string        `default:"0660" placeholder:"MODE" help:"Permissions of a unix socket, in octal."`
	ShutdownTimeout time.Duration `default:"30s" help:"On SIGTERM, how long messages under way may take to finish."`
	Metrics         string        `placeholder:"HOST:PORT" help:"Serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 127.0.0.1:9357); mf-bridge status reads them."`
	records
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
	Live       bool     `help:"Let the stages write the state store as for real mail (count quotas, add dynamic entries); without it they are told MF_READ_ONLY=true."`
}

// server is the running mf-bridge: the configuration generation new
// sessions start under, and what outlives a reload.
type server struct {
	log      *logger.Logger
	gen      atomic.Pointer[generation]
	inFlight atomic.Int64
	stdout   io.Writer
	metrics  *metrics
}

// generation is one reading of the configuration: the command line and
// mf.conf as parsed, and the session configuration built from them. Start
// and SIGHUP build it by the same function, so after a reload every
// setting is the new one, or none is.
type generation struct {
	cli   *root
	res   *config.Result
	cfg   *bridge.Config
	users users // sessions under it (commands.go)
}

var program = cli.Program{Name: "mf-bridge", Section: "bridge", Description: description}

func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	return cli.Main(ctx, program, &root{}, stdin, stdout, stderr, args, lookupEnv)
}

// start builds the server and its first generation. It keeps metrics
// only when they have an address to be served on (milter --metrics): in
// any other mode nothing could read them, and building them (the Go and
// process collectors) was a tenth of the qmail-queue shim's own work.
func start(env *cli.Env, c *root, metricsAddr string) (*server, error) {
	srv := &server{log: env.Log, stdout: env.Stdout}
	if metricsAddr != "" {
		srv.metrics = newMetrics(srv)
	}
	g, err := srv.newGeneration(c, env.Config, env.LookupEnv)
	if err != nil {
		return nil, err
	}
	srv.gen.Store(g)
	return srv, nil
}

func (cmd *milterCmd) Run(env *cli.Env, c *root) error {
	srv, err := start(env, c, c.Milter.Metrics)
	if err != nil {
		return err
	}
	return srv.serve(env.Ctx, env.Args, env.LookupEnv)
}

func (cmd *testCmd) Run(env *cli.Env, c *root) error {
	srv, err := start(env, c, "")
	if err != nil {
		return err
	}
	defer srv.gen.Load().retire()
	env.Code, err = srv.test(env.Ctx, env.Stdin, env.Stdout)
	return err
}

func parse(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (*root, *config.Result, error) {
	var c root
	res, err := config.Parse(&c, program.Name, program.Section, program.Description, args, stdout, stderr, lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	return &c, res, nil
}

// newGeneration builds what sessions need from one reading of the
// configuration. The decision log is opened by the caller that serves.
func (srv *server) newGeneration(c *root, res *config.Result, lookupEnv func(string) (string, bool)) (*generation, error) {
	ch, err := newChain(c, res, lookupEnv)
	if err != nil {
		return nil, err
	}
	cfg := &bridge.Config{Chain: ch, SpoolDir: c.SpoolDir, Log: srv.log, InFlight: &srv.inFlight, TraceHeader: c.TraceHeader}
	if srv.metrics != nil {
		cfg.Observe = srv.metrics.observe
	}
	if c.MTA == "postfix" || c.MTA == "sendmail" {
		cfg.Hidden = 1
	}
	return &generation{cli: c, res: res, cfg: cfg}, nil
}

// newChain reads the stage lines. Every error names where the line was.
func newChain(c *root, res *config.Result, lookupEnv func(string) (string, bool)) (*chain.Chain, error) {
	su, err := stageUser(c)
	if err != nil {
		return nil, err
	}
	ch := &chain.Chain{Runner: &chain.Runner{TempDir: c.SpoolDir, Env: stageEnv(c, lookupEnv), User: su,
		Commands: commands, Resident: resident.New()}}
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
		st.Argv[0] = sibling(st.Argv[0])
		if at, dup := seen[st.Name]; dup {
			return nil, fmt.Errorf("%s: stage %s: name already used at %s", where, st.Name, at)
		}
		seen[st.Name] = where
		ch.Stages = append(ch.Stages, st)
	}
	return ch, nil
}

// inherited are the names a stage takes from the bridge's environment.
// Nothing else is passed on: the bridge's own MF_ variables would be read
// by an mf stage as its own flags (MF_STAGE, a chain line for the bridge,
// would be an SMTP phase to mf-lists), and HOME would be the bridge's.
var inherited = []string{"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"}

// stageEnv is the environment stages start with: the inherited names, and
// the settings meant for mf stages, so they read the same file and count
// in the same store as the bridge. The runner adds the envelope and
// MF_INPUT.
func stageEnv(c *root, lookupEnv func(string) (string, bool)) []string {
	var env []string
	for _, k := range inherited {
		if v, ok := lookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if _, ok := lookupEnv("PATH"); !ok {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	if c.SpoolDir != "" {
		env = append(env, "TMPDIR="+c.SpoolDir) // where mf stages spool too
	}
	if _, err := os.Stat(c.Config); err == nil {
		env = append(env, "MF_CONFIG="+c.Config)
	}
	if c.StateDir != "" {
		env = append(env, "MF_STATE_DIR="+c.StateDir)
	}
	// What a stage says on stderr goes into the bridge's log and record
	// as text, whatever format the file asks of the bridge.
	env = append(env, "MF_LOG_FORMAT=text")
	if c.State != "" {
		env = append(env, "MF_STATE="+c.State)
	}
	return env
}
