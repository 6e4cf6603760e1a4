// Package mfscan is the command mf-scan (content scanners): its Run is
// what the command's main calls, and what mf-bridge calls to run a
// mf-scan stage inside its own process, so it reads no global state and
// keeps none between calls but what lib/resident keeps for it.
package mfscan

import (
	"context"
	"fmt"
	"io"
	"time"

	"mf/lib/cli"
	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/mime"
	"mf/lib/resident"
	"mf/lib/scan"
	"mf/lib/scan/outcome"
	"mf/lib/scan/rule"
	"mf/lib/stage"
)

const description = `Scan a message with clamd, spamd, other programs and content rules, and reject, tempfail, discard, quarantine or tag it.

Engines are scan.engine lines in mf.conf, rules are files named by scan.rules. Exit status: 0 continue, 99 accept (discard, quarantine), 100 reject, 111 tempfail, 75 error (a scanner down). See mf-scan(1).`

type root struct {
	config.Globals
	Engine     []string      `sep:"none" placeholder:"ENGINE" help:"A scanner: NAME clamd|spamd|program [OPTION=VALUE...] [-- PROGRAM ARG...]; repeat for several, all run on each message."`
	Rules      []string      `sep:"none" type:"path" placeholder:"FILE" help:"A rule file: OUTCOME TARGET PATTERN [OPTION=VALUE...] a line; repeat for several."`
	CacheTTL   time.Duration `name:"cache-ttl" default:"10m" help:"Keep each engine's answer about a body this long in the state store, so that the same body (to many recipients, or retried) is scanned once (0: no cache)."`
	MaxParts   int           `default:"500" placeholder:"N" help:"MIME parts looked at by the rules; past that the rest is named as not decoded."`
	ZipEntries int           `default:"10000" placeholder:"N" help:"Names listed from the zip archives of one part."`
	ZipDepth   int           `default:"3" placeholder:"N" help:"Zip archives opened inside zip archives, deep."`
	ZipRatio   int64         `default:"100" placeholder:"N" help:"An archive inside an archive that expands more than N times is not opened."`
	Undecoded  string        `enum:"continue,tag,quarantine,tempfail,discard,reject" default:"continue" help:"The outcome of a message with a part that could not be decoded (it is named in X-Mf-Scan-Undecoded whatever this says)."`

	Check checkCmd `cmd:"" help:"Run as a stage: scan the message, write the stream on with the verdict and the result fields."`
}

type checkCmd struct {
	stage.Flags
}

// Run runs mf-scan with args (without the program name) and returns its
// exit status.
func Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	return cli.Main(ctx, cli.Program{Name: "mf-scan", Section: "scan", Description: description}, &root{}, stdin, stdout, stderr, args, lookupEnv)
}

func (cmd *checkCmd) Run(env *cli.Env, c *root) error {
	sc, release, err := scanner(env.Ctx, c, env.Config, env.Log, env.LookupEnv)
	if err != nil {
		return err
	}
	defer release()
	cmd.Log = env.Log.Infof
	env.Code, err = stage.Run(env.Ctx, "mf-scan", &cmd.Flags, env.Stdin, env.Stdout, env.Getenv, func(ctx context.Context, m *stage.Message) (*stage.Decision, error) {
		return decide(ctx, sc, m)
	})
	return err
}

// scanner builds the engines and rules, each bad value refused with the
// file and line it came from, and opens the store if anything needs it.
//
// Inside mf-bridge the store stays open for the configuration's
// generation (lib/resident); release gives it back.
func scanner(ctx context.Context, c *root, res *config.Result, log *logger.Logger, lookupEnv func(string) (string, bool)) (sc *scan.Scanner, release func(), err error) {
	sc = &scan.Scanner{CacheTTL: c.CacheTTL, Logf: log.Infof, Limits: mime.DefaultLimits, LookupEnv: lookupEnv}
	if c.MaxParts < 1 || c.ZipEntries < 0 || c.ZipDepth < 0 || c.ZipRatio < 1 {
		return nil, nil, fmt.Errorf("scan: max-parts, zip-entries, zip-depth and zip-ratio must be positive")
	}
	sc.Limits.MaxParts, sc.Limits.ZipEntries, sc.Limits.ZipDepth, sc.Limits.ZipRatio = c.MaxParts, c.ZipEntries, c.ZipDepth, c.ZipRatio
	sc.Undecoded.Action, _ = outcome.ParseAction(c.Undecoded) // kong checked the name
	needStore := ""
	for i, line := range c.Engine {
		e, err := scan.ParseEngine(line)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: scan.engine: %w", res.Origin("engine", i), err)
		}
		for _, o := range sc.Engines {
			if o.Name == e.Name {
				return nil, nil, fmt.Errorf("%s: scan.engine: an engine named %s already exists", res.Origin("engine", i), e.Name)
			}
		}
		if e.Concurrency > 0 {
			needStore = "engine " + e.Name + " concurrency"
		}
		if e.OnVirus.Block != nil || e.SpamReject.Block != nil {
			needStore = "engine " + e.Name + " block"
		}
		for _, o := range e.Exits {
			if o.Block != nil {
				needStore = "engine " + e.Name + " block"
			}
		}
		sc.Engines = append(sc.Engines, e)
	}
	for i, f := range c.Rules {
		// Parsed once for each version of the file while mf-scan runs
		// inside mf-bridge: rules are not changed after.
		rs, err := resident.GetFile(ctx, "rules", f, func() ([]*rule.Rule, error) { return rule.ParseFile(f) })
		if err != nil {
			return nil, nil, fmt.Errorf("%s: scan.rules: %w", res.Origin("rules", i), err)
		}
		for _, r := range rs {
			if r.Block != nil {
				needStore = "rule " + r.Name + " block"
			}
		}
		sc.Rules = append(sc.Rules, rs...)
	}
	nothing := func() {}
	if needStore == "" && (c.CacheTTL <= 0 || len(sc.Engines) == 0) {
		return sc, nothing, nil
	}
	st, release, err := resident.Store(ctx, c.State, c.StateDir, c.LockTimeout)
	if err != nil {
		if needStore != "" {
			return nil, nil, fmt.Errorf("%s needs the state store: %w", needStore, err)
		}
		// The cache only saves work: without it every message is scanned.
		log.Warnf("no result cache: %v", err)
		return sc, nothing, nil
	}
	sc.Store = st
	return sc, release, nil
}

func decide(ctx context.Context, sc *scan.Scanner, m *stage.Message) (*stage.Decision, error) {
	if !m.Env.HasMessage() {
		return &stage.Decision{Trace: "no-message"}, nil
	}
	// Size spools the message, so that the engines' readers, opened at
	// once, each read the spool file.
	size, err := m.Size()
	if err != nil {
		return nil, err
	}
	sc.DryRun = m.DryRun
	rep, err := sc.Scan(ctx, &scan.Msg{Env: m.Env, Open: m.Open, Size: size})
	if err != nil {
		return nil, err
	}
	return &stage.Decision{
		Verdict:    rep.Outcome.Verdict(),
		AddHeaders: rep.Headers,
		Trace:      rep.Trace,
		Reason:     rep.Reason,
		Subject:    rep.Subject,
		Drop:       rep.Drop,
	}, nil
}
