// Package cli is how every mf command starts: the command line and
// mf.conf parsed, logging set up, --print-config answered, panics turned
// into exit 75, and the chosen sub-command run by its own typed Run
// method, so a sub-command cannot be renamed into doing nothing.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"

	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/verdict"
)

// Program names a command: "mf-lists", its section of mf.conf ("lists"),
// and the description --help starts with.
type Program struct {
	Name, Section, Description string
}

// Env is what a sub-command's Run method is given. Run sets Code when the
// exit status is not 0; an error it returns is logged, and the exit
// status is 75.
type Env struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Log    *logger.Logger
	Config *config.Result
	Code   int

	// For a command that reads its configuration again (SIGHUP).
	Args      []string
	LookupEnv func(string) (string, bool)
}

// Globaler is a command's flag struct: it embeds config.Globals.
type Globaler interface{ Global() *config.Globals }

// Main runs a command: cli is its flag struct, whose leaf sub-commands
// (or the struct itself, for a command without any) have a method
//
//	Run(env *cli.Env, ...) error
//
// kong calls with env and any parent struct among its parameters.
func Main(ctx context.Context, p Program, c Globaler, stdin io.Reader, stdout, stderr io.Writer, args []string, lookupEnv func(string) (string, bool)) (code int) {
	log := logger.New(p.Name, stderr)
	defer Recover(log, &code)
	parse := func() (*config.Result, error) {
		return config.Parse(c, p.Name, p.Section, p.Description, args, stdout, stderr, lookupEnv)
	}
	// Inside mf-bridge a parser is reused; one left by a run that
	// panicked is not.
	ps, put, err := parserFor(ctx, p, c)
	if err != nil {
		log.Errorf("%v", err)
		return verdict.ExitError
	}
	if ps != nil {
		c = ps.c
		parse = func() (*config.Result, error) { return ps.p.Parse(args, stdout, stderr, lookupEnv) }
		defer func() {
			if r := recover(); r != nil {
				panic(r) // for Recover, above; the parser is dropped
			}
			put()
		}()
	}
	res, code, done := start(parse, c, c.Global(), log, p.Name, stdout)
	defer log.Close()
	if done {
		return code
	}
	env := &Env{
		Ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: log, Config: res,
		Getenv: func(k string) string { v, _ := lookupEnv(k); return v },
		Args:   args, LookupEnv: lookupEnv,
	}
	if err := run(res.Ctx, env, c); err != nil {
		log.Errorf("%v", err)
		return verdict.ExitError
	}
	return env.Code
}

// run calls the Run method of the chosen sub-command, and of each command
// above it that has one, as kong's Context.Run would: its parameters are
// the Env and any of the commands on the way down, root included, by
// type. It does so without kong's bindings: inside mf-bridge a stage runs
// for every message, and looking up providers and visiting every flag for
// hooks each time was a tenth of what a run cost.
func run(ctx *kong.Context, env *Env, root any) error {
	node := ctx.Selected()
	if node == nil {
		return fmt.Errorf("no command selected")
	}
	have := []reflect.Value{reflect.ValueOf(env), reflect.ValueOf(root)}
	for n := node; n != nil; n = n.Parent {
		have = append(have, n.Target.Addr())
	}
	found := false
	for n := node; n != nil; n = n.Parent {
		m := n.Target.Addr().MethodByName("Run")
		if !m.IsValid() {
			continue
		}
		found = true
		t := m.Type()
		args := make([]reflect.Value, t.NumIn())
	params:
		for i := range args {
			for _, v := range have {
				if v.Type() == t.In(i) {
					args[i] = v
					continue params
				}
			}
			return fmt.Errorf("%s: Run takes a %s, which is not on its path", strings.TrimSpace(n.Path()), t.In(i))
		}
		if t.NumOut() != 1 || t.Out(0) != reflect.TypeFor[error]() {
			return fmt.Errorf("%s: Run does not return an error", strings.TrimSpace(n.Path()))
		}
		if err, _ := m.Call(args)[0].Interface().(error); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("no Run method for %s", strings.TrimSpace(node.Path()))
	}
	return nil
}

// Missing lists the sub-commands of cli that have no Run method, which
// kong would refuse to run: a command's test asserts there are none.
func Missing(c any) []string {
	k, err := kong.New(c, kong.Exit(func(int) {}))
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		leaf := true
		for _, ch := range n.Children {
			if ch.Type == kong.CommandNode {
				leaf = false
				walk(ch)
			}
		}
		if leaf && !hasRun(n.Target) {
			out = append(out, strings.TrimSpace(n.Path()))
		}
	}
	walk(k.Model.Node)
	return out
}

func hasRun(v reflect.Value) bool {
	_, ok := v.Addr().Type().MethodByName("Run")
	return ok
}

// Start parses the command line and configuration as every mf command
// does, then does what the global flags ask: debugging detail, syslog,
// --print-config. When done is true the command has nothing more to do
// and code is its exit status; any error has been logged. Otherwise the
// caller runs, and closes log when it returns.
func Start(cli any, g *config.Globals, log *logger.Logger, name, section, description string, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (res *config.Result, code int, done bool) {
	return start(func() (*config.Result, error) {
		return config.Parse(cli, name, section, description, args, stdout, stderr, lookupEnv)
	}, cli, g, log, name, stdout)
}

func start(parse func() (*config.Result, error), cli any, g *config.Globals, log *logger.Logger, name string, stdout io.Writer) (res *config.Result, code int, done bool) {
	res, err := parse()
	var exit config.Exit
	if errors.As(err, &exit) {
		if exit != 0 {
			return nil, verdict.ExitError, true
		}
		return nil, 0, true
	}
	if err != nil {
		log.Errorf("%v (see %s --help)", err, name)
		return nil, verdict.ExitError, true
	}
	log.SetVerbose(g.Verbose)
	log.SetJSON(g.LogFormat == "json")
	if g.Syslog {
		if err := log.OpenSyslog(); err != nil {
			log.Warnf("%v", err)
		}
	}
	if g.PrintConfig {
		if err := res.Print(stdout); err != nil {
			return nil, verdict.ExitError, true
		}
		return res, 0, true
	}
	if g.CheckConfig {
		if c, ok := cli.(ConfigChecker); ok {
			if err := c.CheckConfig(res, log); err != nil {
				log.Errorf("%v", err)
				return nil, verdict.ExitError, true
			}
		}
		return res, 0, true
	}
	return res, 0, false
}

// ConfigChecker is a command that checks more of its configuration than
// parsing does (the files its values name, the state store), for
// --check-config. A command without it is checked by parsing alone.
type ConfigChecker interface {
	CheckConfig(res *config.Result, log *logger.Logger) error
}

// Recover, deferred by a command's run function, turns a panic into an
// internal error in the log and exit status 75: a bug is an error, never
// a verdict, and loses no mail.
func Recover(log *logger.Logger, code *int) {
	if r := recover(); r != nil {
		log.Errorf("internal error: %v", r)
		*code = verdict.ExitError
	}
}
