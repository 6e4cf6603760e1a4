package main

import (
	"fmt"
	"os"
	"os/user"

	"mf/lib/chain"
)

// stageUser is whom stages run as: --stage-user when the bridge was
// started as root (chain.Init kept it the right to switch) or given
// CAP_SETUID, CAP_SETGID and CAP_KILL, nil (the bridge's own user) when
// it was started as its service user without them and cannot switch.
// Decided by how the bridge started, not by its uid now, so a SIGHUP
// reload after dropping root still separates stages.
func stageUser(c *root) (*chain.User, error) {
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
	if b, err := user.Lookup(c.User); err == nil && b.Uid == fmt.Sprint(u.Credential.Uid) || int(u.Credential.Uid) == os.Getuid() {
		return nil, fmt.Errorf("stage-user %q is --user %q: a stage of the bridge's own user could signal it; name another", c.StageUser, c.User)
	}
	return u, nil
}
