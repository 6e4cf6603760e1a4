package mfquota

import (
	"context"

	"mf/lib/config"
	"mf/lib/logger"
	"mf/lib/state"
)

// CheckConfig is --check-config: every rule and option built as check
// would build them, and the state store reachable.
func (c *root) CheckConfig(res *config.Result, log *logger.Logger) error {
	e, release, err := engine(context.Background(), c, res)
	if err != nil {
		return err
	}
	release()
	log.Debugf("%d quota rule(s)", len(e.Rules))
	return state.Reachable(context.Background(), c.State, c.StateDir, c.LockTimeout)
}
