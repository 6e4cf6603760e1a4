package main

import (
	"fmt"
	"os/user"

	"mf/lib/chain"
)

// stageUser is whom stages run as: --stage-user when the bridge was
// started as root (chain.Init kept it the right to switch), nil (the
// bridge's own user) when it was started as its service user and cannot.
// Decided by how the bridge started, not by its uid now, so a SIGHUP
// reload after dropping root still separates stages.
func stageUser(c *cli) (*chain.User, error) {
	if !chain.SwitchesUser() {
		return nil, nil
	}
	u, err := chain.LookupUser(c.StageUser)
	if err != nil {
		return nil, fmt.Errorf("stage-user %q: %w: stages run as a user of their own; create it (useradd --system --no-create-home %s) or name another with --stage-user", c.StageUser, err, c.StageUser)
	}
	if u.Credential.Uid == 0 {
		return nil, fmt.Errorf("stage-user %q is root: stages never run as root", c.StageUser)
	}
	if b, err := user.Lookup(c.User); err == nil && b.Uid == fmt.Sprint(u.Credential.Uid) {
		return nil, fmt.Errorf("stage-user %q is --user %q: a stage of the bridge's own user could signal it; name another", c.StageUser, c.User)
	}
	return u, nil
}
