package mflists

import (
	"context"

	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/state"
)

// CheckConfig is --check-config: every list file parsed as check would
// parse it, the dynamic reply, and the state store reachable.
func (c *root) CheckConfig(res *config.Result, log *logger.Logger) error {
	ls, err := c.load(context.Background(), log)
	if err != nil {
		return err
	}
	log.Debugf("%d list(s)", len(ls))
	if c.StateDir == "" && c.State == "" {
		return nil
	}
	return state.Reachable(context.Background(), c.State, c.StateDir, c.LockTimeout)
}
