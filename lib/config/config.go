// Package config reads the command line with kong and mf.conf with ff's
// plain "key value" parser, in one order for every command: flags, then
// MF_* environment, then the file, then defaults.
//
// mf.conf holds global keys ("syslog") and one section per command
// ("lists.dir"). A command reads the global keys and its own section,
// ignores the other commands' sections, and refuses anything else, naming
// the file and line.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/peterbourgon/ff/v3"
	"github.com/willabides/kongplete"

	"mf/lib/resident"
)

// DefaultFile is read when no --config or MF_CONFIG names another;
// make stamps it from SYSCONFDIR.
var DefaultFile = "/etc/mf/mf.conf"

// Version is stamped at build time (make all).
var Version = "dev"

// Command is an mf command that owns a section of mf.conf, and the
// arguments "mf-bridge check" gives it after --config FILE --check-config
// (a stage command's check sub-command holds flags of its section too).
type Command struct {
	Section string   // "lists": keys "lists.xxx"
	Program string   // "mf-lists"
	Args    []string // sub-command under which every key of the section is read
}

// Commands are every mf command that reads mf.conf, one line each; a key
// of a section not here is refused by all of them.
var Commands = []Command{
	{"bridge", "mf-bridge", nil},
	{"lists", "mf-lists", []string{"check"}},
	{"quota", "mf-quota", []string{"check"}},
	{"stat", "mf-stat", nil},
	{"scan", "mf-scan", nil},
	{"accept", "mf-accept", []string{"check"}},
}

// Sections are the sections of mf.conf some command owns.
var Sections = func() []string {
	var s []string
	for _, c := range Commands {
		s = append(s, c.Section)
	}
	return s
}()

// Globals are the settings every command has. Each command embeds them.
type Globals struct {
	Version     versionFlag   `group:"global" help:"Print the version and exit."`
	Config      string        `short:"c" type:"path" env:"MF_CONFIG" placeholder:"FILE" group:"global" help:"Configuration file; a missing default file is not an error."` // default DefaultFile, set by NewParser
	PrintConfig bool          `group:"global" help:"Print the effective settings as mf.conf lines, each with where it came from, and exit."`
	CheckConfig bool          `group:"global" help:"Check this command's part of the configuration as a whole (every key, and what the values name: list files, rules, the state store), and exit: 0 if good, 75 if not. mf-bridge check runs it for every command."`
	Syslog      bool          `group:"global" help:"Also log to syslog, facility mail."`
	Verbose     bool          `short:"v" group:"global" help:"Log debugging detail."`
	LogFormat   string        `enum:"text,json" default:"text" group:"global" help:"How diagnostics on stderr look: text (\"mf-lists: info: ...\") or json, one object a line with time, prog, level and msg."`
	StateDir    string        `type:"path" default:"/var/lib/mf" placeholder:"DIR" group:"global" help:"State directory: compiled list caches, dynamic lists, quota counts."`
	State       string        `placeholder:"URL" group:"global" help:"Keep quotas and dynamic lists in Redis (redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS, unix:///SOCKET) instead of state-dir/kv."`
	LockTimeout time.Duration `default:"10s" group:"global" help:"How long to wait for a lock in the state directory before giving up with exit 75."`
}

// versionFlag prints the command's name and Version, and exits. It is
// kong's VersionFlag without kong's variables: kong interpolates every
// variable into every value of the model, and the two variables that
// version and the default configuration file took were a fifth of what
// building the model cost, at every start of a command.
type versionFlag bool

func (versionFlag) BeforeReset(k *kong.Kong) error {
	fmt.Fprintln(k.Stdout, k.Model.Name+" "+Version)
	k.Exit(0)
	return nil
}

// Global gives the Globals of the command struct that embeds them.
func (g *Globals) Global() *Globals { return g }

// notInFile are flags a file cannot set.
var notInFile = map[string]bool{"help": true, "version": true, "config": true, "print-config": true, "check-config": true}

// isGlobal reports whether fl is one of the Globals every command has:
// only those may stand in the file without a section, or one command's
// key would be an unknown key to all the others.
func isGlobal(fl *kong.Flag) bool { return fl.Group != nil && fl.Group.Key == "global" }

// fileKey reports whether a file may set fl: not the flags about the file
// itself, and not the envelope of one message.
func fileKey(fl *kong.Flag) bool {
	return !notInFile[fl.Name] && (fl.Group == nil || fl.Group.Key != "envelope")
}

// Exit is returned by Parse when kong asked to exit, after --help.
type Exit int

func (e Exit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// LineError is a bad line in a configuration file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

type entry struct {
	value string
	line  int
}

// file is one loaded mf.conf, and a kong resolver over it.
type file struct {
	path    string
	section string
	vals    map[string][]entry // key as written (with section prefix)
	used    map[string][]entry // flag name -> entries that set it, for --print-config
	err     error              // first bad value met while resolving
	getenv  func(string) (string, bool)
}

// key maps a key of the file to a flag name of this command, or reports
// that the key belongs to another command's section.
func (f *file) key(k string) (name string, mine bool) {
	for _, s := range Sections {
		if rest, ok := strings.CutPrefix(k, s+"."); ok {
			return rest, s == f.section
		}
	}
	return k, true
}

func newFile(path, section string, getenv func(string) (string, bool)) *file {
	return &file{path: path, section: section, vals: map[string][]entry{}, used: map[string][]entry{}, getenv: getenv}
}

// maxLine bounds a line of the configuration file.
const maxLine = 64 << 10

func load(path, section string, r io.Reader, getenv func(string) (string, bool)) (*file, error) {
	f := newFile(path, section, getenv)
	// ff's parser knows the format but not line numbers, so it is fed
	// one line at a time, read as it comes: a line is bounded, and so is
	// what a huge one costs before it is refused.
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.ReplaceAll(sc.Text(), "\t", " ")
		// ff strips " #" comments from values only; "syslog # why" would
		// otherwise give syslog the value "# why".
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			// ff skips these too; but each call of it starts a
			// scanner with a 4 KiB buffer of its own, and most of
			// an mf.conf is comments.
			continue
		}
		err := ff.PlainParser(strings.NewReader(line), func(k, v string) error {
			k = strings.TrimLeft(k, "-")
			f.vals[k] = append(f.vals[k], entry{v, n})
			return nil
		})
		if err != nil {
			return nil, &LineError{path, n, err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LineError{path, n + 1, fmt.Errorf("line longer than %d KiB", maxLine>>10)}
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// validate refuses keys this command does not know and single-valued keys
// given twice.
func (f *file) validate(app *kong.Application) error {
	flags := map[string]*kong.Flag{}
	_ = kong.Visit(app.Node, func(n kong.Visitable, next kong.Next) error {
		if fl, ok := n.(*kong.Flag); ok && fileKey(fl) {
			flags[fl.Name] = fl
		}
		return next(nil)
	})
	var errs []*LineError
	for k, es := range f.vals {
		name, mine := f.key(k)
		if !mine {
			continue
		}
		fl, ok := flags[name]
		if ok && k == name && !isGlobal(fl) {
			errs = append(errs, &LineError{f.path, es[0].line, fmt.Errorf("unknown key %q (did you mean %s.%s?)", k, f.section, k)})
			continue
		}
		if !ok {
			errs = append(errs, &LineError{f.path, es[0].line, fmt.Errorf("unknown key %q", k)})
			continue
		}
		if len(es) > 1 && !fl.IsSlice() {
			errs = append(errs, &LineError{f.path, es[1].line, fmt.Errorf("%s already set at line %d", k, es[0].line)})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs[0]
}

func (f *file) Validate(*kong.Application) error { return nil }

// Resolve gives a flag's value from the MF_* environment, or else from the
// file. kong applies the environment like a default, before resolvers, and
// reads the process's own; taking it here, through getenv, makes a set
// variable beat the file and the caller's getenv the environment.
func (f *file) Resolve(_ *kong.Context, _ *kong.Path, fl *kong.Flag) (any, error) {
	for _, e := range fl.Envs {
		if v, ok := f.getenv(e); ok {
			if err := check(fl, v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", e, v, err)
			}
			return v, nil
		}
	}
	if !fileKey(fl) {
		return nil, nil
	}
	es, ok := f.vals[f.section+"."+fl.Name]
	if !ok && isGlobal(fl) {
		es = f.vals[fl.Name]
	}
	if len(es) == 0 {
		return nil, nil
	}
	var v any = f.relative(fl, es[len(es)-1].value)
	if fl.IsSlice() {
		vs := make([]any, len(es))
		for i, e := range es {
			vs[i] = f.relative(fl, e.value)
		}
		v = vs
	}
	if err := check(fl, v); err != nil {
		if f.err == nil {
			f.err = &LineError{f.path, es[0].line, fmt.Errorf("%s: %w", fl.Name, err)}
		}
		return nil, f.err
	}
	f.used[fl.Name] = es
	return v, nil
}

// relative makes a relative path in the file relative to the file's
// directory, not to wherever the command runs: "lists.dir lists" is
// /etc/mf/lists in /etc/mf/mf.conf and etc/lists in a checkout.
func (f *file) relative(fl *kong.Flag, v string) string {
	if fl.Tag.Type != "path" || v == "" || filepath.IsAbs(v) || strings.HasPrefix(v, "~") || v == "-" {
		return v
	}
	return filepath.Join(filepath.Dir(f.path), v)
}

// check parses v into a scratch value of the flag's type, so that a bad
// value is reported with its line rather than by kong without one.
func check(fl *kong.Flag, v any) error {
	scratch := reflect.New(fl.Target.Type()).Elem()
	if err := fl.Parse(kong.Scan().PushTyped(v, kong.FlagValueToken), scratch); err != nil {
		return err
	}
	if fl.Enum == "" {
		return nil
	}
	vals := []any{v}
	if vs, ok := v.([]any); ok {
		vals = vs
	}
	for _, x := range vals {
		if !fl.EnumMap()[fmt.Sprint(x)] {
			return fmt.Errorf("%q is not one of %s", x, strings.Join(fl.EnumSlice(), ", "))
		}
	}
	return nil
}

// Result is a parsed command line with its configuration applied.
type Result struct {
	Ctx     *kong.Context
	looked  string // the configuration file read or looked for
	file    *file
	section string
	getenv  func(string) (string, bool)
}

// Parse parses args into cli, which embeds Globals, with the file named by
// --config (or MF_CONFIG, or DefaultFile) as the configuration. name is
// the program ("mf-lists"), section its part of mf.conf ("lists").
// After --help it returns Exit(0). Errors name file and line where
// there is one.
func Parse(cli any, name, section, description string, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) (res *Result, err error) {
	p, err := NewParser(cli, name, section, description)
	if err != nil {
		return nil, err
	}
	return p.Parse(args, stdout, stderr, getenv)
}

// Parser parses command lines into one cli struct, again and again:
// building kong's model of a command costs more than parsing with it, so
// a command run many times in one process (a stage inside mf-bridge)
// keeps parsers. A parser is used by one goroutine at a time; each Parse
// resets every flag and reads the file anew.
type Parser struct {
	k       *kong.Kong
	cli     any
	section string
	res     *Result  // of the Parse under way
	envs    []string // every MF_ variable a flag reads

	// The last parse, given again while the command line, the MF_
	// variables and the configuration file are what they were: kong
	// would fill the struct with the same values.
	last     *Result
	lastKey  string
	lastFile string // the file it read or looked for ("" none)
	lastVer  string
}

// NewParser builds the parser of a command: cli, name, section and
// description as for Parse.
func NewParser(cli any, name, section, description string) (*Parser, error) {
	p := &Parser{section: section, cli: cli}
	k, err := kong.New(cli,
		kong.Name(name),
		kong.Description(description),
		kong.Exit(func(code int) { panic(Exit(code)) }),
		kong.DefaultEnvars("MF"),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
		kong.ValueFormatter(helpValue),
		kong.Groups{
			"global":   "Global flags (mf.conf keys without a section):",
			"envelope": "Envelope of a bare message (not read from mf.conf):",
		},
		kong.PostBuild(func(k *kong.Kong) error {
			// DefaultFile is set when linking, so it cannot be in a tag.
			for _, fl := range k.Model.Flags {
				if fl.Name == "config" {
					fl.Default, fl.HasDefault = DefaultFile, true
				}
			}
			// A global key another command needs is still taken from
			// the shared file, but not offered in this one's --help.
			if u, ok := cli.(interface{ UnusedGlobals() []string }); ok {
				for _, fl := range k.Model.Flags {
					if slices.Contains(u.UnusedGlobals(), fl.Name) {
						fl.Hidden = true
					}
				}
			}
			return nil
		}),
		kong.WithBeforeResolve(func(ctx *kong.Context) error {
			// kong calls an option's hook once for each element of
			// the command line and each flag with a default: the
			// file is read, and its resolver added, the first time.
			res := p.res
			if res.file != nil {
				return nil
			}
			f, err := res.open(ctx)
			if err != nil {
				return err
			}
			if f == nil {
				f = newFile("", section, res.getenv) // still the environment's resolver
			}
			res.file = f
			ctx.AddResolver(f)
			return nil
		}),
	)
	if err != nil {
		return nil, err
	}
	p.k = k
	_ = kong.Visit(k.Model.Node, func(n kong.Visitable, next kong.Next) error {
		if fl, ok := n.(*kong.Flag); ok {
			p.envs = append(p.envs, fl.Envs...)
		}
		return next(nil)
	})
	return p, nil
}

// key says what a parse depends on besides the file.
func (p *Parser) key(args []string, getenv func(string) (string, bool)) string {
	var b strings.Builder
	b.Grow(256)
	for _, a := range args {
		b.WriteString(a)
		b.WriteByte(0)
	}
	for _, e := range p.envs {
		if v, ok := getenv(e); ok {
			b.WriteByte(1)
			b.WriteString(e)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	return b.String()
}

// fileVersion names the state of the configuration file at path.
func fileVersion(path string) string {
	if path == "" {
		return ""
	}
	v, err := resident.FileVersion(path)
	if err != nil {
		return "missing"
	}
	return v
}

// Parse parses args into the parser's cli struct, as the package's Parse
// does.
func (p *Parser) Parse(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) (res *Result, err error) {
	key := p.key(args, getenv)
	if p.last != nil && key == p.lastKey && fileVersion(p.lastFile) == p.lastVer {
		r := *p.last
		r.getenv = getenv
		return &r, nil
	}
	p.last = nil
	res = &Result{section: p.section, getenv: getenv}
	p.res = res
	defer func() { p.res = nil }()
	p.k.Stdout, p.k.Stderr = stdout, stderr
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(Exit)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	if _, ok := getenv("COMP_LINE"); ok {
		// bash's "complete -C mf-lists mf-lists": print the words that
		// complete the line and exit.
		kongplete.Complete(p.k)
	}
	ctx, err := p.k.Parse(args)
	if ctx == nil && err != nil && onlyConfig(p.cli, err) {
		// --print-config and --check-config need no sub-command: the
		// settings are applied before kong misses one.
		var pe *kong.ParseError
		errors.As(err, &pe)
		ctx, err = pe.Context, nil
	}
	if res.file != nil && res.file.err != nil {
		return nil, res.file.err // kong's wrapping adds nothing to file:line
	}
	var le *LineError
	if errors.As(err, &le) {
		return nil, le
	}
	if err != nil {
		return nil, err
	}
	res.Ctx = ctx
	p.last, p.lastKey, p.lastFile, p.lastVer = res, key, res.looked, fileVersion(res.looked)
	return res, nil
}

// helpValue is a flag's help with its default, which kong shows only for
// a flag without a placeholder ("--mta=\"auto\"", but not "-c, --config=FILE").
func helpValue(v *kong.Value) string {
	if v.HasDefault && v.Default != "" && v.Tag.PlaceHolder != "" && !strings.Contains(v.Help, "(default") {
		c := *v
		c.Help = strings.TrimRight(v.Help, ".") + " (default " + v.Default + ")."
		v = &c
	}
	return kong.DefaultHelpValueFormatter(v)
}

// onlyConfig reports whether err is kong missing a sub-command (or its
// argument) after the settings were applied, on a command line that asks
// only about the configuration.
func onlyConfig(cli any, err error) bool {
	var pe *kong.ParseError
	if !errors.As(err, &pe) || pe.Context == nil || pe.Context.Error != nil {
		return false
	}
	g, ok := cli.(interface{ Global() *Globals })
	return ok && (g.Global().PrintConfig || g.Global().CheckConfig) && strings.HasPrefix(err.Error(), "expected")
}

// open loads the configuration file, if there is one to load.
func (res *Result) open(ctx *kong.Context) (*file, error) {
	var path string
	explicit := false
	for _, fl := range ctx.Flags() {
		if fl.Name == "config" {
			path, _ = ctx.FlagValue(fl).(string)
			origin := res.origin(ctx, fl)
			explicit = origin != "default"
			if e, ok := strings.CutPrefix(origin, "environment "); ok {
				// kong took the process's environment, not getenv's.
				path, _ = res.getenv(e)
				path = kong.ExpandPath(path)
			}
		}
	}
	if path == "" {
		return nil, nil
	}
	res.looked = path
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	f, err := load(path, res.section, fh, res.getenv)
	if err != nil {
		return nil, err
	}
	if err := f.validate(ctx.Model); err != nil {
		return nil, err
	}
	return f, nil
}

// Origin says where the i'th value of the flag called name came from:
// "FILE:LINE", "command line", "environment MF_X" or "default". A
// command that checks values further (a repeated key with a syntax of its
// own) puts it before its errors.
func (res *Result) Origin(name string, i int) string {
	for _, fl := range res.Ctx.Flags() {
		if fl.Name == name {
			return res.valueOrigin(res.Ctx, fl, i)
		}
	}
	return "default"
}

// origin says where a flag's value came from.
func (res *Result) origin(ctx *kong.Context, fl *kong.Flag) string {
	return res.valueOrigin(ctx, fl, 0)
}

// valueOrigin says where the i'th value of a flag came from: the values
// of a repeated key come from lines of their own.
func (res *Result) valueOrigin(ctx *kong.Context, fl *kong.Flag, i int) string {
	for _, p := range ctx.Path {
		if p.Flag == fl && !p.Resolved {
			return "command line"
		}
	}
	for _, e := range fl.Envs {
		if _, ok := res.getenv(e); ok {
			return "environment " + e
		}
	}
	if res.file != nil {
		if es, ok := res.file.used[fl.Name]; ok {
			return fmt.Sprintf("%s:%d", res.file.path, es[min(i, len(es)-1)].line)
		}
	}
	return "default"
}

// Print writes the effective settings of the command being run as mf.conf
// lines, each followed by where its value came from.
func (res *Result) Print(w io.Writer) error {
	ctx := res.Ctx
	var b strings.Builder
	for _, fl := range ctx.Flags() {
		if !fileKey(fl) || fl.Hidden {
			continue
		}
		key := fl.Name
		if !isGlobal(fl) {
			key = res.section + "." + key
		}
		vals := values(ctx.FlagValue(fl))
		if len(vals) == 0 {
			fmt.Fprintf(&b, "# %s is not set\n", key)
			continue
		}
		for i, v := range vals {
			fmt.Fprintf(&b, "%-24s %-20s # %s\n", key, v, res.valueOrigin(ctx, fl, i))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func values(v any) []string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		out := make([]string, rv.Len())
		for i := range out {
			out[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return out
	}
	s := fmt.Sprint(v)
	if s == "" {
		return nil
	}
	return []string{s}
}

// SectionOrigin says where the file first sets a key of section
// ("FILE:LINE"), or "" if it sets none: a section whose command is not
// installed is then an error to report there.
func (res *Result) SectionOrigin(section string) string {
	if res.file == nil {
		return ""
	}
	line := 0
	for k, es := range res.file.vals {
		if strings.HasPrefix(k, section+".") && (line == 0 || es[0].line < line) {
			line = es[0].line
		}
	}
	if line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d", res.file.path, line)
}
