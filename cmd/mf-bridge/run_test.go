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
