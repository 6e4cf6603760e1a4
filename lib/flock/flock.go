// Package flock takes exclusive flock(2) locks with a timeout, so a stage
// waiting on a stuck peer gives up (exit 75) instead of holding mail.
package flock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrTimeout is wrapped by Lock when the lock was not had in time.
var ErrTimeout = errors.New("timed out waiting for lock")

// Lock is a held lock. The lock file stays; only the lock goes.
type Lock struct{ f *os.File }

// Acquire creates path if needed and locks it exclusively, waiting at
// most timeout. flock has no timeout of its own, so it is polled with a
// growing pause: short waits stay short, long ones cost little.
func Acquire(path string, timeout time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w after %s", path, ErrTimeout, timeout)
		}
		time.Sleep(pause)
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// Release drops the lock.
func (l *Lock) Release() error {
	return l.f.Close() // closing the last descriptor drops the flock
}
