// Package mfaccept is the command mf-accept (whether to accept a client
// and its envelope): its Run is what the command's main calls, and what
// mf-bridge calls to run a mf-accept stage inside its own process, so it
// reads no global state and keeps none between calls but what
// lib/resident keeps for it.
package mfaccept

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"mf/lib/accept"
	"mf/lib/cli"
	"mf/lib/config"
	"mf/lib/dns"
	"mf/lib/dnsbl"
	"mf/lib/greylist"
	"mf/lib/lists"
	"mf/lib/logger"
	"mf/lib/resident"
	"mf/lib/stage"
	"mf/lib/stream"
)

const description = `Decide whether a client and its envelope deserve to be accepted: HELO, reverse DNS, DNS lists, SPF, greylisting, limits, header sanity, and at data DKIM and DMARC.

Checks are accept.check, accept.dnsbl, accept.rhsbl and accept.dnswl lines in mf.conf. Exit status: 0 continue, 99 quarantine, 100 reject, 111 tempfail, 75 error. See mf-accept(1).`

type root struct {
	config.Globals
	Checks     []string      `name:"check" sep:"none" placeholder:"CHECK" help:"A check and its outcome: NAME [action=reject|tempfail|quarantine|tag|score] [score=N] [reply=\"...\"] [dry-run]; repeat for several. A check not named is off."`
	Dnsbl      []string      `sep:"none" placeholder:"ZONE" help:"A DNSBL asked for the client address: ZONE [codes=A,B-C,NET] [mask=N] [server=ADDR:PORT] [test=KEY] [probe=no] [action=...] [score=N] [reply=\"...\"] [dry-run]; repeat for several."`
	Rhsbl      []string      `sep:"none" placeholder:"ZONE" help:"An RHSBL asked for the sender and HELO domains: ZONE [on=sender,helo] [codes=...] [action=...] [score=N] [reply=\"...\"] [dry-run]."`
	Dnswl      []string      `sep:"none" placeholder:"ZONE" help:"A DNSWL: a client it lists skips the heuristic checks. ZONE [codes=...] [mask=N] [dry-run]."`
	Resolver   []string      `sep:"none" placeholder:"ADDR[:PORT]" help:"Recursive DNS server to ask; repeat for several (default: the nameservers of --resolv-conf)."`
	ResolvConf string        `default:"/etc/resolv.conf" placeholder:"FILE" help:"Where the nameservers are when no --resolver is given."`
	DNSTimeout time.Duration `name:"dns-timeout" default:"5s" help:"One deadline for all lookups of a phase, run at once."`
	HealthTTL  time.Duration `name:"dns-health-ttl" default:"1m" help:"How long the answers of the DNS lists' test entries are believed, shared in state-dir/dnsbl-health (0: ask them for every message)."`
	DNSError   string        `name:"dns-error" enum:"tempfail,continue" default:"tempfail" help:"What a lookup a check needs and does not get (timeout, SERVFAIL) does: tempfail, or continue without that check. An unhealthy DNS list is skipped either way."`

	OwnName        []string `sep:"none" placeholder:"HOST" help:"One of our host names: a client giving it as HELO lies (helo-own)."`
	OwnAddr        []string `sep:"none" placeholder:"IP" help:"One of our addresses (helo-own)."`
	OwnDomain      []string `sep:"none" placeholder:"DOMAIN" help:"One of our mail domains: From in it from an outside unauthenticated client (header-own-domain)."`
	AllowNet       []string `sep:"none" placeholder:"CIDR" help:"Client network that skips the heuristics and SPF, like authenticated clients."`
	GenericPattern []string `sep:"none" placeholder:"REGEXP" help:"Pattern of a generic or dynamic host name (rdns-generic), replacing the built-in ones; repeat for several."`

	RejectScore   float64 `placeholder:"N" help:"Reject when the scores of the checks that fired add up to N (0: off)."`
	TempfailScore float64 `placeholder:"N" help:"Tempfail when they add up to N (0: off)."`

	MaxRcpts           int    `placeholder:"N" help:"Recipients per message (max-rcpts; 0: no limit)."`
	MaxSize            string `placeholder:"SIZE" help:"Message size in bytes, k, M or G; the size announced at MAIL (sendmail's {msg_size} macro, --size) and the real one at data (max-size)."`
	NullSenderMaxRcpts int    `default:"1" placeholder:"N" help:"Recipients a message from the null sender may have (null-sender-rcpts)."`

	GreylistDelay     time.Duration `default:"5m" help:"A retry sooner than this after the first attempt is refused again."`
	GreylistWindow    time.Duration `default:"24h" help:"A retry later than this after the first attempt counts as a new first attempt."`
	GreylistExpiry    time.Duration `default:"840h" help:"A tuple that passed stays allowed this long after its last use."`
	GreylistAutoAllow int           `default:"5" placeholder:"N" help:"A client network whose tuples passed N times is no longer greylisted (0: never)."`
	GreylistV4Mask    int           `name:"greylist-v4-mask" default:"24" help:"Prefix length of the client network of an IPv4 tuple."`
	GreylistV6Mask    int           `name:"greylist-v6-mask" default:"64" help:"Prefix length of the client network of an IPv6 tuple."`
	GreylistSkipSPF   bool          `name:"greylist-skip-spf" default:"true" negatable:"" help:"An SPF pass skips the greylist."`

	DMARC         bool   `name:"dmarc" help:"At data, verify DKIM signatures and the From domain's DMARC policy and write Authentication-Results (dmarc-reject, dmarc-quarantine)."`
	MaxSignatures int    `default:"5" placeholder:"N" help:"DKIM signatures verified per message, at most."`
	Hostname      string `placeholder:"HOST" help:"Our name in Authentication-Results and Received-SPF (default: the host name)."`

	Check    checkCmd    `cmd:"" help:"Run as a stage: decide on the client, envelope or message, write the stream on with the verdict."`
	Greylist greylistCmd `cmd:"" help:"Show, release or expire greylisted tuples."`
}

type checkCmd struct {
	stage.Flags
	Size int64 `group:"envelope" placeholder:"BYTES" help:"Size announced at MAIL (SIZE=) of a bare envelope."`
}

type greylistCmd struct {
	Show    showCmd    `cmd:"" help:"Print the greylisted and allowed tuples and the client counts."`
	Release releaseCmd `cmd:"" help:"Let the next retry of a tuple through at once."`
	Expire  expireCmd  `cmd:"" help:"Drop expired tuples (and other expired state) now."`
}

type showCmd struct {
	Pattern string `arg:"" optional:"" help:"Only tuples containing this text or matching this shell pattern."`
}

type releaseCmd struct {
	Tuple []string `arg:"" help:"NETWORK SENDER RECIPIENT as greylist show prints it (one argument or three)."`
}

type expireCmd struct{}

// Run runs mf-accept with args (without the program name) and returns
// its exit status.
func Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) int {
	return cli.Main(ctx, cli.Program{Name: "mf-accept", Section: "accept", Description: description}, &root{}, stdin, stdout, stderr, args, lookupEnv)
}

// withPolicy builds the policy, and gives the greylist's store back after f.
func withPolicy(env *cli.Env, c *root, checking bool, f func(*accept.Policy) error) error {
	p, release, err := policy(env.Ctx, c, env.Config, checking)
	if err != nil {
		return err
	}
	defer release()
	return f(p)
}

func (cmd *checkCmd) Run(env *cli.Env, c *root) error {
	return withPolicy(env, c, true, func(p *accept.Policy) (err error) {
		env.Code, err = check(env.Ctx, c, p, env.Stdin, env.Stdout, env.Getenv, env.Log)
		return err
	})
}

func (cmd *showCmd) Run(env *cli.Env, c *root) error {
	return withPolicy(env, c, false, func(p *accept.Policy) error { return show(env.Ctx, p.Greylist, cmd.Pattern, env.Stdout) })
}

func (cmd *releaseCmd) Run(env *cli.Env, c *root) error {
	return withPolicy(env, c, false, func(p *accept.Policy) error {
		t, err := greylist.ParseTuple(strings.Join(cmd.Tuple, " "))
		if err != nil {
			return err
		}
		if err := p.Greylist.Release(env.Ctx, t); err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "released %s\n", t)
		return err
	})
}

func (cmd *expireCmd) Run(env *cli.Env, c *root) error {
	return withPolicy(env, c, false, func(p *accept.Policy) error {
		n, err := p.Greylist.St.Expire(env.Ctx)
		if err == nil {
			fmt.Fprintf(env.Stdout, "%d expired entries dropped\n", n)
		}
		return err
	})
}

// policy builds the checks from the settings, each bad value refused
// with the file and line it came from. The state store is opened only
// when the greylist needs it.
// resolver is c's DNS client, made once for each version of resolv.conf
// while mf-accept runs inside mf-bridge (it is not changed after).
func resolver(ctx context.Context, c *root) (*dns.Client, error) {
	open := func() (*dns.Client, error) { return dns.NewClient(c.Resolver, c.ResolvConf, c.DNSTimeout) }
	if len(c.Resolver) > 0 {
		return open() // no file to read
	}
	return resident.GetFile(ctx, fmt.Sprintf("resolver\x00%s", c.DNSTimeout), c.ResolvConf, open)
}

func policy(ctx context.Context, c *root, res *config.Result, checking bool) (_ *accept.Policy, release func(), err error) {
	release = func() {}
	p := &accept.Policy{Rules: map[string]*accept.Rule{}, Timeout: c.DNSTimeout, DNSError: accept.Tempfail,
		RejectScore: c.RejectScore, TempfailScore: c.TempfailScore, MaxRcpts: c.MaxRcpts,
		NullSenderMaxRcpts: c.NullSenderMaxRcpts, GreylistSkipSPF: c.GreylistSkipSPF, DMARC: c.DMARC,
		MaxVerifications: c.MaxSignatures, Hostname: c.Hostname}
	bad := func(flag string, i int, format string, a ...any) error {
		return fmt.Errorf("%s: accept.%s: %s", res.Origin(flag, i), flag, fmt.Sprintf(format, a...))
	}
	if c.DNSError == "continue" {
		p.DNSError = accept.Tag
	}
	if c.DNSTimeout <= 0 || c.DNSTimeout > time.Minute {
		return nil, nil, bad("dns-timeout", 0, "%s: want more than 0 and at most 1m", c.DNSTimeout)
	}
	for i, s := range c.Checks {
		r, err := accept.ParseRule(s)
		if err != nil {
			return nil, nil, bad("check", i, "%v", err)
		}
		if p.Rules[r.Name] != nil {
			return nil, nil, bad("check", i, "%s given twice", r.Name)
		}
		p.Rules[r.Name] = r
	}
	for _, l := range []struct {
		flag string
		kind dnsbl.Kind
		vals []string
	}{{"dnsbl", dnsbl.Block, c.Dnsbl}, {"rhsbl", dnsbl.RHS, c.Rhsbl}, {"dnswl", dnsbl.Allow, c.Dnswl}} {
		for i, s := range l.vals {
			li, err := accept.ParseList(l.kind, s)
			if err != nil {
				return nil, nil, bad(l.flag, i, "%v", err)
			}
			p.Lists = append(p.Lists, li)
		}
	}
	for i, s := range c.OwnName {
		h := accept.ParseHelo(s)
		if h.Kind != accept.FQDN {
			return nil, nil, bad("own-name", i, "%q is not a host name", s)
		}
		p.OwnNames = append(p.OwnNames, h.Name)
	}
	for i, s := range c.OwnAddr {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, nil, bad("own-addr", i, "%q is not an IP address", s)
		}
		p.OwnAddrs = append(p.OwnAddrs, a.Unmap())
	}
	for i, s := range c.OwnDomain {
		h := accept.ParseHelo(s)
		if h.Kind != accept.FQDN {
			return nil, nil, bad("own-domain", i, "%q is not a domain", s)
		}
		p.OwnDomains = append(p.OwnDomains, h.Name)
	}
	for i, s := range c.AllowNet {
		n, err := lists.ParseNet(s) // the one network syntax, as mf-lists reads it
		if err != nil {
			return nil, nil, bad("allow-net", i, "%v", err)
		}
		p.AllowNets = append(p.AllowNets, n)
	}
	pats := c.GenericPattern
	if len(pats) == 0 {
		pats = accept.DefaultGeneric
	}
	for i, s := range pats {
		// Compiled once a generation inside mf-bridge: a compiled
		// regexp is safe to share.
		re, _, err := resident.Get(ctx, "regexp\x00"+s, "", func() (*regexp.Regexp, func() error, error) {
			re, err := regexp.Compile(s)
			return re, nil, err
		})
		if err != nil {
			return nil, nil, bad("generic-pattern", i, "%v", err)
		}
		p.Generic = append(p.Generic, re)
	}
	if c.MaxSize != "" {
		n, err := config.ParseSize(c.MaxSize)
		if err == nil && n == 0 {
			err = fmt.Errorf("%q: want a size above 0", c.MaxSize)
		}
		if err != nil {
			return nil, nil, bad("max-size", 0, "%v", err)
		}
		p.MaxSize = n
	}
	for _, n := range []struct {
		flag string
		v    int
		lo   int
		hi   int
	}{{"max-rcpts", c.MaxRcpts, 0, 1 << 20}, {"null-sender-max-rcpts", c.NullSenderMaxRcpts, 1, 1 << 20},
		{"greylist-v4-mask", c.GreylistV4Mask, 8, 32}, {"greylist-v6-mask", c.GreylistV6Mask, 16, 128},
		{"greylist-auto-allow", c.GreylistAutoAllow, 0, 1 << 20}, {"max-signatures", c.MaxSignatures, 1, 50}} {
		if n.v < n.lo || n.v > n.hi {
			return nil, nil, bad(n.flag, 0, "%d: want %d to %d", n.v, n.lo, n.hi)
		}
	}
	if c.GreylistDelay < 0 || c.GreylistWindow <= c.GreylistDelay || c.GreylistExpiry <= 0 {
		return nil, nil, bad("greylist-window", 0, "%s: want longer than greylist-delay %s, and expiry above 0", c.GreylistWindow, c.GreylistDelay)
	}
	if p.Hostname == "" {
		p.Hostname, _ = os.Hostname()
	}
	// The name goes into header fields: a host name, if not a fully
	// qualified one ("localhost" on a bare machine).
	if p.Hostname == "" || strings.Trim(strings.ToLower(p.Hostname), "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return nil, nil, bad("hostname", 0, "%q is not a host name", p.Hostname)
	}
	p.AuthServID = p.Hostname
	if checking {
		cl, err := resolver(ctx, c)
		if err != nil {
			return nil, nil, bad("resolver", 0, "%v", err)
		}
		p.R = dns.NewCache(cl)
		if c.HealthTTL > 0 && len(p.Lists) > 0 {
			p.Health = &dnsbl.HealthFile{Path: filepath.Join(c.StateDir, "dnsbl-health"), TTL: c.HealthTTL}
		}
		for _, l := range p.Lists {
			if l.Server != "" {
				l.Zone.R = dns.NewCache(&dns.Client{Servers: []string{l.Server}, Timeout: c.DNSTimeout})
			}
		}
	}
	if !checking || p.Rules["greylist"] != nil {
		st, rel, err := resident.Store(ctx, c.State, c.StateDir, c.LockTimeout)
		if err != nil {
			return nil, nil, err
		}
		release = rel
		p.Greylist = &greylist.List{St: st, Opt: greylist.Options{
			Delay: c.GreylistDelay, Window: c.GreylistWindow, Expiry: c.GreylistExpiry, AutoAllow: c.GreylistAutoAllow,
			V4Mask: c.GreylistV4Mask, V6Mask: c.GreylistV6Mask}}
	}
	return p, release, nil
}

func check(ctx context.Context, c *root, p *accept.Policy, stdin io.Reader, out io.Writer, getenv func(string) string, log *logger.Logger) (int, error) {
	c.Check.Log = log.Infof
	return stage.Run(ctx, "mf-accept", &c.Check.Flags, stdin, out, getenv, func(ctx context.Context, m *stage.Message) (*stage.Decision, error) {
		env := m.Env
		t := &accept.Txn{Phase: env.Phase, Helo: env.Helo, Sender: env.MailFrom, Rcpts: env.Rcpts,
			AuthUser: env.AuthUser, Pending: env.AddHeaders, DryRun: m.DryRun, Size: c.Check.Size}
		if env.ClientAddr != "" {
			a, err := netip.ParseAddr(strings.Trim(env.ClientAddr, "[]"))
			if err != nil {
				return nil, fmt.Errorf("client address %q: not an IP address", stream.Encode(env.ClientAddr))
			}
			t.Client = a.Unmap()
		}
		for _, tr := range env.Trace {
			if strings.HasPrefix(tr, "mf-accept ") {
				t.EarlierRun = true
				t.EarlierExempt, t.EarlierPhase, t.EarlierHits = "", "", nil
				for _, w := range strings.Fields(tr) {
					k, v, _ := strings.Cut(w, "=")
					switch k {
					case "exempt":
						t.EarlierExempt = v
					case "phase":
						t.EarlierPhase = stream.Phase(v)
					case "hits":
						t.EarlierHits = strings.Split(v, ",")
					}
				}
			}
		}
		for _, mc := range env.Macros {
			if mc.Name == "{msg_size}" {
				if n, err := strconv.ParseInt(mc.Value, 10, 64); err == nil && n > 0 {
					t.Size = n
				}
			}
		}
		if env.HasMessage() {
			h, err := m.Header()
			if err != nil {
				return nil, err
			}
			t.Header = h
			if p.DMARC {
				t.Open = m.Open
			}
			if p.MaxSize > 0 && p.Rules["max-size"] != nil {
				if t.Size, err = m.Size(); err != nil {
					return nil, err
				}
			}
		}
		o, err := p.Evaluate(ctx, t)
		if err != nil {
			return nil, err
		}
		if !m.DryRun {
			if err := p.Health.Save(); err != nil {
				log.Warnf("dnsbl health: %v", err) // only costs a probe next time
			}
		}
		for _, n := range o.Notes {
			log.Infof("%s", n)
		}
		if o.Exempt != "" {
			log.Debugf("heuristics skipped: %s", o.Exempt)
		}
		d := &stage.Decision{Verdict: o.Verdict, AddHeaders: o.AddHeaders}
		var trace, why []string
		if o.Rule != nil {
			trace = append(trace, "check="+o.Rule.Name)
		} else if o.Verdict.Action.Final() && o.Score > 0 {
			trace = append(trace, "check=score")
		} else if o.Verdict.Action.Final() {
			trace = append(trace, "check=dns-error")
		}
		var names []string
		for _, h := range o.Hits {
			names = append(names, h.Rule.Name)
			w := h.Rule.Action.String()
			if h.Rule.DryRun {
				w = "would " + w
				log.Infof("dry-run: %s would %s: %s", h.Rule.Name, h.Rule.Action, h.Detail)
			}
			why = append(why, fmt.Sprintf("%s (%s): %s", h.Rule.Name, w, h.Detail))
		}
		if len(names) > 0 {
			trace = append(trace, "hits="+strings.Join(names, ","))
		}
		if w := o.Would(); len(w) > 0 {
			trace = append(trace, "would="+strings.Join(w, ","))
		}
		if o.Score != 0 {
			trace = append(trace, fmt.Sprintf("score=%g", o.Score))
		}
		if o.SPF != "" {
			trace = append(trace, "spf="+o.SPF)
		}
		if o.Exempt != "" {
			trace = append(trace, "exempt="+o.Exempt)
		}
		trace = append(trace, "phase="+string(env.Phase))
		d.Trace = strings.Join(trace, " ")
		if o.Verdict.Action.Final() {
			d.Reason = strings.Join(why, "; ")
			if d.Reason == "" {
				d.Reason = strings.Join(o.Notes, "; ")
			}
		} else if len(why) > 0 {
			log.Infof("continue: %s", strings.Join(why, "; "))
		}
		return d, nil
	})
}

func show(ctx context.Context, l *greylist.List, pattern string, out io.Writer) error {
	es, err := l.Show(ctx, pattern)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		fmt.Fprintln(out, "no greylist entries")
	}
	now := time.Now()
	for _, e := range es {
		left := "never"
		if !e.Expires.IsZero() {
			left = e.Expires.Sub(now).Round(time.Second).String()
		}
		switch {
		case e.Client:
			st := "counting"
			if e.Allowed {
				st = "allowed"
			}
			fmt.Fprintf(out, "client %s %s passed=%d expires-in=%s\n", e.Tuple, st, e.Passes, left)
		default:
			st := "greylisted"
			switch {
			case e.Released:
				st = "released"
			case e.Allowed:
				st = "allowed"
			}
			fmt.Fprintf(out, "tuple %s %s first=%s last=%s passed=%d expires-in=%s\n", e.Tuple, st,
				e.First.UTC().Format(time.RFC3339), e.Last.UTC().Format(time.RFC3339), e.Passes, left)
		}
	}
	return nil
}
