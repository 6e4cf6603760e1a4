package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/verdict"
)

func TestRecover(t *testing.T) {
	var log bytes.Buffer
	code := func() (code int) {
		defer Recover(logger.New("mf-test", &log), &code)
		var m map[string]int
		m["x"] = 1 // a bug
		return 0
	}()
	if code != verdict.ExitError || !strings.Contains(log.String(), "mf-test: error: internal error: assignment to entry in nil map") {
		t.Errorf("code %d, log %q", code, log.String())
	}
}

type ranCmd struct{}

func (ranCmd) Run(env *Env) error { env.Code = 42; return nil }

type testRoot struct {
	config.Globals
	Ran     ranCmd   `cmd:""`
	Renamed struct{} `cmd:""` // a sub-command whose Run went missing
}

func TestMissing(t *testing.T) {
	if m := Missing(&testRoot{}); len(m) != 1 || m[0] != "renamed" {
		t.Errorf("Missing = %q, want [renamed]", m)
	}
}

func TestMainRunsTheChosenCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	none := func(string) (string, bool) { return "", false }
	p := Program{Name: "mf-test", Section: "lists"}
	if code := Main(context.Background(), p, &testRoot{}, nil, &out, &errOut, []string{"-c", "/dev/null", "ran"}, none); code != 42 {
		t.Errorf("ran: exit %d, %s", code, errOut.String())
	}
	// Without a Run method kong refuses: an error, never exit 0.
	if code := Main(context.Background(), p, &testRoot{}, nil, &out, &errOut, []string{"-c", "/dev/null", "renamed"}, none); code != verdict.ExitError {
		t.Errorf("renamed: exit %d, want %d", code, verdict.ExitError)
	}
}
