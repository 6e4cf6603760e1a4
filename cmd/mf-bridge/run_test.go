package main

import (
	"testing"

	"mf/lib/cli"
)

func TestEverySubCommandRuns(t *testing.T) {
	if m := cli.Missing(&root{}); len(m) > 0 {
		t.Errorf("sub-commands without a Run method: %v", m)
	}
}

// Postfix and sendmail both keep their Received: above the header a
// milter sees and count it in insert indexes (PROTOCOLS.md §12); auto
// knows each by its v macro.
func TestHidden(t *testing.T) {
	for v, want := range map[string]int{"Postfix 3.7.11": 1, "8.17.1": 1, "": 0, "miltertest": 0} {
		if got := hidden(map[string]string{"v": v}); got != want {
			t.Errorf("v=%q: %d, want %d", v, got, want)
		}
	}
	// sendmail's own connect macros, as it sends them by default.
	if got := hidden(map[string]string{"_": "client.example (localhost [127.0.0.1])", "j": "mta.mf.test", "{daemon_name}": "MTA"}); got != 1 {
		t.Errorf("sendmail's connect macros: %d, want 1", got)
	}
}
