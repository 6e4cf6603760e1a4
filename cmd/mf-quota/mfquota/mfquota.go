// Package mfquota is the command mf-quota (quotas): its Run is what the command's
// main calls, and what mf-bridge calls to run a mf-quota stage inside its own
// process, so it reads no global state and keeps none between calls.
package mfquota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"mf/lib/cli"
	"mf/lib/config"
	"mf/lib/lists"
	"mf/lib/logger"
	"mf/lib/quota"
	"mf/lib/resident"
	"mf/lib/stage"
	"mf/lib/state"
	"mf/lib/stream"
	"mf/lib/verdict"
)

const description = `Count mail per client, network, sender, domain, AUTH user or recipient in time windows, and refuse what passes a limit.

Rules are quota.rule lines in mf.conf. Exit status: 0 continue, 100 reject, 111 tempfail, 75 error. See mf-quota(1).`

type root struct {
	config.Globals
	Rule         []string      `sep:"none" placeholder:"RULE" help:"A quota rule: NAME key=... limit=N/DURATION[,...] [count=messages|recipients|bytes] [window=sliding|fixed] [action=tempfail|reject|block[:LIST]] [for=DURATION] [reply=\"...\"] [reserve=N] [dry-run]; repeat for several."`
	ExemptNet    []string      `sep:"none" placeholder:"CIDR" help:"Client network no rule counts; repeat for several."`
	ExemptSender []string      `sep:"none" placeholder:"ADDR" help:"Sender (user@domain or @domain) no rule counts; repeat for several."`
	ExemptAuth   bool          `help:"Count authenticated senders only by rules keyed by auth-user."`
	LocalNet     []string      `sep:"none" placeholder:"CIDR" help:"Client network that, like authenticated senders, may use the reserve of server-wide limits."`
	Concurrency  int           `placeholder:"N" help:"Messages in the data stage at once, server-wide (0: no limit)."`
	ConcReserve  int           `name:"concurrency-reserve" placeholder:"N" help:"Of --concurrency, slots only authenticated and local senders may take."`
	SlotTTL      time.Duration `default:"10m" help:"A concurrency slot not released ends after this."`
	BusyReply    string        `default:"451 4.3.2 System busy, try again later" help:"Reply when --concurrency is reached."`

	Check   checkCmd   `cmd:"" help:"Run as a stage: count the message or recipient, write the stream on with the verdict."`
	Show    showCmd    `cmd:"" help:"Print the current counts and limits, of every key or of KEY."`
	Reset   resetCmd   `cmd:"" help:"Delete the counts of KEY."`
	Release releaseCmd `cmd:"" help:"End the concurrency slot of the message on stdin (its Mf-Queue-Id), at the end of the chain."`
	Expire  expireCmd  `cmd:"" help:"Drop expired counts (and other expired state) from the state directory now."`
}

type checkCmd struct {
	stage.Flags
}

type showCmd struct {
	Key string `arg:"" optional:"" help:"A key value (192.0.2.7, 192.0.2.0/24, alice@example.org, @example.org, a user) or a combined one (@example.org+bob@example.com)."`
}

type resetCmd struct {
	Key string `arg:"" help:"A key value, as mf-quota show prints it."`
}

type releaseCmd struct {
	stream.Flags
}

type expireCmd struct{}

// Run runs the command with args (without the program name), as its main
// would, reading the environment only through lookupEnv; it returns the
// exit status.
func Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	return cli.Main(ctx, cli.Program{Name: "mf-quota", Section: "quota", Description: description}, &root{}, stdin, stdout, stderr, args, lookupEnv)
}

// withEngine runs f with the rules built and the store open.
func withEngine(env *cli.Env, c *root, f func(*quota.Engine) error) error {
	e, release, err := engine(env.Ctx, c, env.Config)
	if err != nil {
		return err
	}
	defer release()
	return f(e)
}

func (cmd *checkCmd) Run(env *cli.Env, c *root) error {
	return withEngine(env, c, func(e *quota.Engine) (err error) {
		env.Code, err = check(env.Ctx, c, e, env.Stdin, env.Stdout, env.Getenv, env.Log)
		return err
	})
}

func (cmd *showCmd) Run(env *cli.Env, c *root) error {
	return withEngine(env, c, func(e *quota.Engine) error { return show(env.Ctx, e, cmd.Key, env.Stdout) })
}

func (cmd *resetCmd) Run(env *cli.Env, c *root) error {
	return withEngine(env, c, func(e *quota.Engine) error {
		n, err := e.Reset(env.Ctx, cmd.Key)
		if err == nil {
			fmt.Fprintf(env.Stdout, "%d counters of %s deleted\n", n, cmd.Key)
		}
		return err
	})
}

func (cmd *releaseCmd) Run(env *cli.Env, c *root) error {
	return withEngine(env, c, func(e *quota.Engine) error { return release(env.Ctx, c, e, env.Stdin, env.Getenv) })
}

func (cmd *expireCmd) Run(env *cli.Env, c *root) error {
	return withEngine(env, c, func(e *quota.Engine) error {
		n, err := e.St.Expire(env.Ctx)
		if err == nil {
			fmt.Fprintf(env.Stdout, "%d expired entries dropped\n", n)
		}
		return err
	})
}

// engine builds the rules and options, each bad value refused with the
// file and line it came from, and opens the store (kept open in the
// context's resident set inside mf-bridge); release lets go of it.
func engine(ctx context.Context, c *root, res *config.Result) (e *quota.Engine, release func(), err error) {
	e = &quota.Engine{}
	for i, s := range c.Rule {
		r, err := quota.ParseRule(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: quota.rule: %w", res.Origin("rule", i), err)
		}
		for _, o := range e.Rules {
			if o.Name == r.Name {
				return nil, nil, fmt.Errorf("%s: quota.rule: a rule named %s already exists", res.Origin("rule", i), r.Name)
			}
		}
		e.Rules = append(e.Rules, r)
	}
	nets := func(flag string, vals []string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for i, v := range vals {
			p, err := lists.ParseNet(v) // the one network syntax, as mf-lists reads it
			if err != nil {
				return nil, fmt.Errorf("%s: quota.%s: %w", res.Origin(flag, i), flag, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	o := &e.Opt
	if o.ExemptNets, err = nets("exempt-net", c.ExemptNet); err != nil {
		return nil, nil, err
	}
	if o.LocalNets, err = nets("local-net", c.LocalNet); err != nil {
		return nil, nil, err
	}
	for i, s := range c.ExemptSender {
		if !strings.Contains(s, "@") {
			return nil, nil, fmt.Errorf("%s: quota.exempt-sender: %q is not user@domain or @domain", res.Origin("exempt-sender", i), s)
		}
	}
	o.ExemptSenders, o.ExemptAuth = c.ExemptSender, c.ExemptAuth
	// --dry-run: the engine decides as for real, on a store that keeps
	// nothing (below), and lib/stage reports the verdict as "would".
	o.Concurrency, o.ConcReserve, o.SlotTTL = c.Concurrency, c.ConcReserve, c.SlotTTL
	if c.Concurrency < 0 || c.ConcReserve < 0 || c.ConcReserve >= max(c.Concurrency, 1) && c.ConcReserve > 0 {
		return nil, nil, fmt.Errorf("%s: quota.concurrency-reserve: %d must be below concurrency %d", res.Origin("concurrency-reserve", 0), c.ConcReserve, c.Concurrency)
	}
	if o.BusyReply, err = verdict.ParseReply(c.BusyReply); err != nil || o.BusyReply.Code/100 != 4 {
		return nil, nil, fmt.Errorf("%s: quota.busy-reply: want a 4xx reply: %q", res.Origin("busy-reply", 0), c.BusyReply)
	}
	if e.St, release, err = resident.Store(ctx, c.State, c.StateDir, c.LockTimeout); err != nil {
		return nil, nil, err
	}
	if c.Check.DryRun || c.Check.ReadOnly {
		e.St = state.Overlay(e.St) // counted on, never written
	}
	return e, release, nil
}

func msgOf(env *stream.Envelope, size int64) quota.Msg {
	return quota.Msg{
		Phase: env.Phase, QueueID: env.QueueID, Client: env.ClientAddr, Sender: env.MailFrom,
		AuthUser: env.AuthUser, Rcpts: env.CurrentRcpts(), Size: size,
	}
}

func check(ctx context.Context, c *root, e *quota.Engine, stdin io.Reader, out io.Writer, getenv func(string) string, log *logger.Logger) (int, error) {
	c.Check.Log = log.Infof
	return stage.Run(ctx, "mf-quota", &c.Check.Flags, stdin, out, getenv, func(ctx context.Context, m *stage.Message) (*stage.Decision, error) {
		// Only a rule counting bytes needs the message measured; without
		// one it streams through.
		var size int64
		if m.Env.HasMessage() && countsBytes(e) {
			var err error
			if size, err = m.Size(); err != nil {
				return nil, err
			}
		}
		o, err := e.Check(ctx, msgOf(m.Env, size))
		if err != nil {
			return nil, err
		}
		for _, n := range o.Notes {
			log.Infof("%s", n)
		}
		if o.Exempt != "" {
			log.Debugf("exempt: %s", o.Exempt)
		}
		d := &stage.Decision{Verdict: o.Verdict}
		if !o.Verdict.Action.Final() {
			return d, nil
		}
		if o.Rule == nil {
			d.Trace = "rule=concurrency"
			d.Reason = fmt.Sprintf("concurrency: %.0f slots held, %d open to this sender", o.Count, o.Limit.N)
		} else {
			d.Trace = "rule=" + o.Rule.Name
			d.Reason = fmt.Sprintf("rule %s key %s: %.0f > %s", o.Rule.Name, o.Key, o.Count, o.Limit)
		}
		if o.Blocked != "" {
			log.Infof("%s added to dynamic list %s for %s", o.Blocked, o.Rule.Block, quota.FormatDuration(o.Rule.For))
		}
		return d, nil
	})
}

func countsBytes(e *quota.Engine) bool {
	for _, r := range e.Rules {
		if r.Count == quota.Bytes {
			return true
		}
	}
	return false
}

func show(ctx context.Context, e *quota.Engine, key string, out io.Writer) error {
	cs, err := e.Show(ctx, key)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		if key != "" {
			fmt.Fprintf(out, "no counts for %s\n", key)
		} else {
			fmt.Fprintln(out, "no counts")
		}
	}
	now := time.Now()
	for _, c := range cs {
		dry := ""
		if c.Rule.DryRun {
			dry = " dry-run"
		}
		fmt.Fprintf(out, "%-16s %-30s %6.0f/%-6d per %-4s %s, %s %s resets in %s%s\n",
			c.Rule.Name, stream.Encode(c.Key), c.Count, c.Limit.N, quota.FormatDuration(c.Limit.Per),
			c.Rule.Count, windowName(c.Rule), c.Rule.Action, c.Resets.Sub(now).Round(time.Second), dry)
	}
	return nil
}

func windowName(r *quota.Rule) string {
	if r.Sliding {
		return "sliding"
	}
	return "fixed"
}

func release(ctx context.Context, c *root, e *quota.Engine, stdin io.Reader, getenv func(string) string) error {
	bare := c.Release.Envelope(getenv)
	s, err := stream.Read(stdin, c.Release.InputKind(), bare)
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	if _, err := io.Copy(io.Discard, s.Message); err != nil {
		return err
	}
	if s.Env.QueueID == "" {
		return errors.New("no queue ID: nothing to release")
	}
	return e.Release(ctx, s.Env.QueueID)
}
