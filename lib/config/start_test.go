package config

import (
	"bytes"
	"strings"
	"testing"

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
