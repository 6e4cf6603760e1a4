package config

import (
	"errors"
	"io"

	"mf/lib/logger"
	"mf/lib/verdict"
)

// Start parses the command line and configuration as every mf command
// does, then does what the global flags ask: debugging detail, syslog,
// --print-config. When done is true the command has nothing more to do
// and code is its exit status; any error has been logged. Otherwise the
// caller runs, and closes log when it returns.
func Start(cli any, g *Globals, log *logger.Logger, name, section, description string, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (res *Result, code int, done bool) {
	res, err := Parse(cli, name, section, description, args, stdout, stderr, lookupEnv)
	var exit Exit
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
	return res, 0, false
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
