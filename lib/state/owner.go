package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// State is shared by the stages, which run as the MTA's filter user, and
// by the commands an administrator runs, often as root. What root creates
// in the state directory is given to the directory's owner: a shard or a
// lock file left owned by root would make every later stage fail to open
// it (exit 75), and so tempfail all mail.

// MkdirAll creates dir and the directories above it that are missing,
// like os.MkdirAll. Run as root, it gives each directory it creates to
// the owner of the nearest one above that already existed.
func MkdirAll(dir string, perm os.FileMode) error {
	var missing []string
	top := filepath.Clean(dir)
	for {
		if _, err := os.Stat(top); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, top)
		up := filepath.Dir(top)
		if up == top {
			break
		}
		top = up
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	if os.Geteuid() != 0 || len(missing) == 0 {
		return nil
	}
	uid, gid, err := owner(top)
	if err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := chown(missing[i], uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// Own gives path to the owner of the directory it is in, when run as
// root; otherwise it does nothing (a user's files are already theirs).
// It is called on every file created in the state directory, and mends
// one an older version left owned by root.
func Own(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := owner(filepath.Dir(path))
	if err != nil {
		return err
	}
	return chown(path, uid, gid)
}

func owner(dir string) (uid, gid int, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("state: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("state: %s: no owner", dir)
	}
	return int(st.Uid), int(st.Gid), nil
}

func chown(path string, uid, gid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("state: give %s to the state directory's owner: %w", path, err)
	}
	return nil
}
