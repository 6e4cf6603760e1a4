// Package mflists is the command mf-lists (allow and block lists): its Run is what the command's
// main calls, and what mf-bridge calls to run a mf-lists stage inside its own
// process, so it reads no global state and keeps none between calls.
package mflists

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"mf/lib/cli"
	"mf/lib/config"
	"mf/lib/lists"
	"mf/lib/logger"
	"mf/lib/resident"
	"mf/lib/stage"
	"mf/lib/state"
	"mf/lib/stream"
	"mf/lib/verdict"
)

const description = `Match a message's client, HELO, sender, recipients and header From against allow and block lists.

Lists are *.list files in --dir, tried in name order; the first allow, block or tempblock hit decides. Exit status: 0 continue, 99 accept, 100 reject, 111 tempfail, 75 error. See mf-lists(1).`

type root struct {
	config.Globals
	Dir  string   `type:"path" default:"/etc/mf/lists" placeholder:"DIR" help:"Directory of *.list files, tried in name order."`
	List []string `type:"path" sep:"none" placeholder:"FILE" help:"List file to use instead of the directory; repeat for several, tried in the order given."`

	DynamicReply string `default:"550 5.7.1 Access denied" help:"Reply for a hit on a dynamic list; a 4xx reply tempfails."`

	Check  checkCmd  `cmd:"" help:"Run as a stage: read a stream (or bare message) on stdin, write it on with the lists' verdict."`
	Why    whyCmd    `cmd:"" help:"Print every list entry that matches an envelope, and the verdict, for a person debugging."`
	Add    addCmd    `cmd:"" help:"Add an entry to a dynamic list in the state store (or renew it)."`
	Del    delCmd    `cmd:"" help:"Delete an entry from a dynamic list."`
	Show   showCmd   `cmd:"" help:"Print the entries of the dynamic lists: entry, expiry, who added it, when, and why."`
	Expire expireCmd `cmd:"" help:"Drop expired entries (and other expired state) from the state directory now."`
}

type addCmd struct {
	List   string        `arg:"" help:"Dynamic list name."`
	Entry  string        `arg:"" help:"Client address or network, client host name (.domain for the hosts below), or sender (user@domain, @domain)."`
	TTL    time.Duration `default:"24h" help:"How long the entry stays (0: until deleted)."`
	Reason string        `placeholder:"TEXT" help:"Why, for mf-lists show and the logs."`
}

type delCmd struct {
	List  string `arg:"" help:"Dynamic list name."`
	Entry string `arg:"" help:"The entry, as added."`
}

type showCmd struct {
	List string `arg:"" optional:"" name:"list-or-entry" help:"Only this dynamic list, or only the entries that match this address, network, host name or sender."`
}

type expireCmd struct{}

type checkCmd struct {
	stage.Flags
}

type whyCmd struct {
	stream.Flags
	File string `arg:"" optional:"" type:"path" help:"Message or stream to take the envelope and header From from (\"-\" for stdin); without it the envelope comes from the flags alone."`
}

// Run runs the command with args (without the program name), as its main
// would, reading the environment only through lookupEnv; it returns the
// exit status.
func Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	return cli.Main(ctx, cli.Program{Name: "mf-lists", Section: "lists", Description: description}, &root{}, stdin, stdout, stderr, args, lookupEnv)
}

func (cmd *checkCmd) Run(env *cli.Env, c *root) (err error) {
	env.Code, err = check(env.Ctx, c, env.Stdin, env.Stdout, env.Getenv, env.Log)
	return err
}

func (cmd *whyCmd) Run(env *cli.Env, c *root) (err error) {
	env.Code, err = why(env.Ctx, c, env.Stdin, env.Stdout, env.Getenv, env.Log)
	return err
}

func (cmd *addCmd) Run(env *cli.Env, c *root) error {
	return withStore(c, func(st state.Store) error {
		by := env.Getenv("USER")
		if u, err := user.Current(); by == "" && err == nil {
			by = u.Username
		}
		d, err := lists.AddDynamic(env.Ctx, st, cmd.List, cmd.Entry, cmd.TTL, cmd.Reason, "mf-lists add by "+by)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s added to %s, %s\n", d.Entry, d.List, expiry(d.Expires))
		return nil
	})
}

func (cmd *delCmd) Run(env *cli.Env, c *root) error {
	return withStore(c, func(st state.Store) error {
		ok, err := lists.DelDynamic(env.Ctx, st, cmd.List, cmd.Entry)
		if err != nil {
			return err
		}
		if !ok {
			env.Log.Warnf("%s is not on dynamic list %s", cmd.Entry, cmd.List)
			env.Code = exitNotFound
			return nil
		}
		fmt.Fprintf(env.Stdout, "%s deleted from %s\n", cmd.Entry, cmd.List)
		return nil
	})
}

func (cmd *showCmd) Run(env *cli.Env, c *root) error {
	return withStore(c, func(st state.Store) (err error) {
		env.Code, err = show(env, st, cmd.List)
		return err
	})
}

func (cmd *expireCmd) Run(env *cli.Env, c *root) error {
	return withStore(c, func(st state.Store) error {
		n, err := st.Expire(env.Ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%d expired entries dropped\n", n)
		return nil
	})
}

// withStore runs f on the state store.
func withStore(c *root, f func(state.Store) error) error {
	st, err := state.Open(c.State, c.StateDir, c.LockTimeout)
	if err != nil {
		return err
	}
	defer st.Close()
	return f(st)
}

// load opens the lists: the static ones in order, then the dynamic ones.
// Inside mf-bridge the directory's listing, each compiled list, the state
// store and the dynamic lists read from it stay open in the context's
// resident set, and a list file (or the directory, when a file comes or
// goes, or the dynamic lists, when the store's version of them changes)
// is read again as soon as it changes.
func (c *root) load(ctx context.Context, log *logger.Logger) ([]*lists.List, error) {
	paths := c.List
	if len(paths) == 0 {
		var err error
		if paths, err = resident.GetFile(ctx, "lists-dir", c.Dir, func() ([]string, error) { return lists.Dir(c.Dir) }); err != nil {
			return nil, err
		}
	}
	o := lists.Options{LockTimeout: c.LockTimeout, Debugf: log.Debugf}
	if c.StateDir != "" {
		o.CacheDir = c.StateDir + "/lists"
	}
	ls := make([]*lists.List, 0, len(paths))
	for _, p := range paths {
		l, err := resident.GetFile(ctx, "list\x00"+o.CacheDir, p, func() (*lists.List, error) { return lists.Open(p, o) })
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	if c.StateDir == "" && c.State == "" {
		return ls, nil
	}
	// The dynamic lists come after the static ones, so a static allow
	// entry still wins over an entry some stage added.
	reply, err := verdict.ParseReply(c.DynamicReply)
	if err != nil || reply.Code/100 != 4 && reply.Code/100 != 5 {
		return nil, fmt.Errorf("dynamic-reply %q: want a 4xx or 5xx reply", c.DynamicReply)
	}
	st, release, err := resident.Store(ctx, c.State, c.StateDir, c.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer release()
	key := "dynamic\x00" + c.State + "\x00" + c.StateDir + "\x00" + c.DynamicReply
	dyns, err := resident.GetFamily(ctx, key, st, lists.DynamicFamily, func() (*lists.Dynamics, error) { return &lists.Dynamics{}, nil })
	if err != nil {
		return nil, err
	}
	dyn, err := dyns.Load(ctx, st, reply)
	if err != nil {
		return nil, err
	}
	return append(ls, dyn...), nil
}

func check(ctx context.Context, c *root, stdin io.Reader, out io.Writer, getenv func(string) string, log *logger.Logger) (int, error) {
	c.Check.Log = log.Infof
	return stage.Run(ctx, "mf-lists", &c.Check.Flags, stdin, out, getenv, func(ctx context.Context, m *stage.Message) (*stage.Decision, error) {
		ls, err := c.load(ctx, log)
		if err != nil {
			return nil, err
		}
		hdr, err := m.Header()
		if err != nil {
			return nil, err
		}
		q := query(m.Env, hdr)
		r := lists.Check(ls, &q)
		d := &stage.Decision{}
		var tags []string
		for _, h := range r.Tags {
			d.AddHeaders = append(d.AddHeaders, h.List.Header+": "+h.List.Name)
			tags = append(tags, "tag="+h.List.Name)
			log.Debugf("tag: %s %s in list %s (%s)", h.Target, h.Value, h.List.Name, h)
		}
		if h := r.Final; h != nil {
			d.Verdict = h.List.Verdict()
			d.Trace = fmt.Sprintf("list=%s %s=%s", h.List.Name, h.Target, h.Value)
			d.Reason = fmt.Sprintf("%s %s in list %s (%s: %s)", h.Target, h.Value, h.List.Name, h, h.Entry())
		}
		d.Trace = strings.TrimSpace(d.Trace + " " + strings.Join(tags, " "))
		return d, nil
	})
}

// query collects what lists are matched against. At rcpt only the
// recipient being decided on is looked at; the null sender matches no
// sender entry.
func query(env *stream.Envelope, hdr *stream.Header) lists.Query {
	q := lists.Query{
		ClientAddr: env.ClientAddr,
		ClientName: env.ClientName,
		Helo:       env.Helo,
		Sender:     env.MailFrom,
		Rcpts:      env.CurrentRcpts(),
	}
	if hdr != nil {
		q.HeaderFrom = fromAddresses(hdr)
	}
	return q
}

// fromAddresses returns the addresses of every From field, as lists
// compare them (lists.FromAddresses: comments, quoting and NULs do not
// hide an address).
func fromAddresses(hdr *stream.Header) []string {
	var vals []string
	fields := hdr.Fields.FieldsByKey("From")
	for fields.Next() {
		vals = append(vals, fields.Value())
	}
	return lists.FromAddresses(vals)
}

func why(ctx context.Context, c *root, stdin io.Reader, out io.Writer, getenv func(string) string, log *logger.Logger) (int, error) {
	env := c.Why.Envelope(getenv)
	var hdr *stream.Header
	if c.Why.File != "" {
		var r io.Reader = stdin
		if c.Why.File != "-" {
			f, err := os.Open(c.Why.File)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			r = f
		}
		s, err := stream.Read(r, c.Why.InputKind(), env)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.Why.File, err)
		}
		env = s.Env
		if env.HasMessage() {
			if hdr, err = stream.ReadHeader(s.Message); err != nil {
				return 0, fmt.Errorf("%s: %w", c.Why.File, err)
			}
		}
	}
	ls, err := c.load(ctx, log)
	if err != nil {
		return 0, err
	}
	q := query(&env, hdr)
	fmt.Fprintf(out, "stage %s\n", env.Phase)
	for _, t := range lists.Targets {
		vals := q.Values(t)
		if len(vals) == 0 {
			fmt.Fprintf(out, "%-12s (none)\n", t)
		}
		for _, v := range vals {
			fmt.Fprintf(out, "%-12s %s\n", t, stream.Encode(v))
		}
	}
	fmt.Fprintln(out)
	hits := lists.Why(ls, &q)
	if len(hits) == 0 {
		fmt.Fprintf(out, "no entry in %d lists matches\n", len(ls))
	}
	for _, h := range hits {
		fmt.Fprintf(out, "%s: %s\t%s %s matches (list %s, %s)\n", h, h.Entry(), h.Target, stream.Encode(h.Value), h.List.Name, h.List.Action)
	}
	r := lists.Check(ls, &q)
	v := verdict.Verdict{Action: verdict.Continue}
	by := ""
	if r.Final != nil {
		v = r.Final.List.Verdict()
		by = " by " + r.Final.String()
	}
	fmt.Fprintln(out)
	for _, t := range r.Tags {
		fmt.Fprintf(out, "header %s: %s\n", t.List.Header, t.List.Name)
	}
	fmt.Fprintf(out, "verdict %s%s\n", v, by)
	return 0, nil
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	return "expires " + t.UTC().Format(time.RFC3339)
}
