package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSecondAcquireTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.lock")
	held, err := Acquire(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	start := time.Now()
	l, err := Acquire(path, timeout)
	waited := time.Since(start)
	if err == nil {
		l.Release()
		t.Fatal("second Acquire of a held lock succeeded")
	}
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("error %v does not wrap ErrTimeout", err)
	}
	if waited < timeout || waited > timeout+500*time.Millisecond {
		t.Errorf("gave up after %v, want about %v", waited, timeout)
	}

	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	l, err = Acquire(path, timeout)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("Acquire of a free lock took %v", d)
	}
	l.Release()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("lock file gone after Release: %v", err)
	}
}

func TestWaiterGetsLockWhenReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	held, err := Acquire(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { held.Release() })
	start := time.Now()
	l, err := Acquire(path, 5*time.Second)
	if err != nil {
		t.Fatalf("waiter: %v", err)
	}
	defer l.Release()
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("waiter got the lock after %v, want soon after 100ms", d)
	}
}

func TestZeroTimeoutTriesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	held, err := Acquire(path, 0)
	if err != nil {
		t.Fatalf("Acquire of a free lock with no timeout: %v", err)
	}
	defer held.Release()
	start := time.Now()
	if _, err := Acquire(path, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("error %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("zero timeout waited %v", d)
	}
}

func TestAcquireBadPath(t *testing.T) {
	_, err := Acquire(filepath.Join(t.TempDir(), "no", "such", "dir", "lock"), time.Second)
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("error %v, want a plain open error", err)
	}
}

// A waiter that gave up does not keep the lock when it comes later.
func TestGaveUpWaiterDropsTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	held, _ := Acquire(path, time.Second)
	if _, err := Acquire(path, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("waiter: %v", err)
	}
	held.Release()
	l, err := Acquire(path, 2*time.Second)
	if err != nil {
		t.Fatalf("after the waiter gave up: %v", err)
	}
	l.Release()
}

// Waiters are queued by the kernel, each handed the lock once it is
// freed: twenty of them, each holding it briefly, all get it in turn.
func TestQueuedWaiters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	done := make(chan error)
	for range 20 {
		go func() {
			l, err := Acquire(path, 10*time.Second)
			if err == nil {
				time.Sleep(2 * time.Millisecond)
				err = l.Release()
			}
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Another user's lock file, not writable, is still locked.
func TestReadOnlyLockFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes any file; needs an unprivileged user")
	}
	path := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(path, nil, 0o444)
	l, err := Acquire(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(path, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a read-only lock does not exclude: %v", err)
	}
	l.Release()
}
