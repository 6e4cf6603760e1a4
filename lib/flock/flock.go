// Package flock takes exclusive flock(2) locks with a timeout, so a stage
// waiting on a stuck peer gives up (exit 75) instead of holding mail. It
// is the one such lock in mf: the state directory's shards, the list
// cache and mf-stat's offsets all take theirs here.
package flock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// ErrTimeout is wrapped by Acquire when the lock was not had in time.
var ErrTimeout = errors.New("timed out waiting for lock")

// Lock is a held lock. The lock file stays; only the lock goes.
type Lock struct{ f *os.File }

// Acquire creates path if needed and locks it exclusively, waiting at
// most timeout (0: trying once). flock(2) has no timeout of its own, so
// the blocking call runs aside while the caller waits; a lock that comes
// after the caller gave up is dropped at once. Waiters queue in the
// kernel instead of polling, which keeps throughput up with dozens of
// processes on one lock, and hands the lock on the moment it is freed.
//
// A lock file that exists but is not writable (another user's) is
// locked through a read-only descriptor: flock does not care.
func Acquire(path string, timeout time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return &Lock{f}, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if timeout <= 0 {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, ErrTimeout)
	}
	got := make(chan error) // unbuffered: a send only succeeds to a waiter
	gaveUp := make(chan struct{})
	go func() {
		var err error
		for {
			if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX); !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		select {
		case got <- err:
		case <-gaveUp:
			f.Close() // drops the lock if it came
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &Lock{f}, nil
	case <-t.C:
		close(gaveUp)
		return nil, fmt.Errorf("lock %s: %w after %s", path, ErrTimeout, timeout)
	}
}

// Release drops the lock.
func (l *Lock) Release() error {
	return l.f.Close() // closing the last descriptor drops the flock
}
