package resident

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGet(t *testing.T) {
	var opened, closed atomic.Int32
	open := func(v string) func() (string, func() error, error) {
		return func() (string, func() error, error) {
			opened.Add(1)
			return v, func() error { closed.Add(1); return nil }, nil
		}
	}
	// Without a set: opened every time, closed by release.
	v, release, err := Get(context.Background(), "k", "1", open("a"))
	release()
	if v != "a" || err != nil || opened.Load() != 1 || closed.Load() != 1 {
		t.Fatalf("no set: %q %v, opened %d closed %d", v, err, opened.Load(), closed.Load())
	}
	s := New()
	ctx := With(context.Background(), s)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, release, err := Get(ctx, "k", "1", open("b"))
			release()
			if v != "b" || err != nil {
				t.Errorf("%q %v", v, err)
			}
		}()
	}
	wg.Wait()
	if opened.Load() != 2 || closed.Load() != 1 {
		t.Errorf("20 concurrent gets opened %d times, closed %d", opened.Load()-1, closed.Load()-1)
	}
	// A new version is opened; the old one is closed with the set.
	if v, _, _ := Get(ctx, "k", "2", open("c")); v != "c" || opened.Load() != 3 || closed.Load() != 1 {
		t.Errorf("new version: %q, opened %d closed %d", v, opened.Load(), closed.Load())
	}
	// A failed open is not kept.
	boom := errors.New("boom")
	if _, _, err := Get(ctx, "x", "", func() (string, func() error, error) { return "", nil, boom }); err != boom {
		t.Errorf("failed open: %v", err)
	}
	if v, _, _ := Get(ctx, "x", "", open("d")); v != "d" {
		t.Errorf("after a failed open: %q", v)
	}
	s.Close()
	if closed.Load() != 4 {
		t.Errorf("Close closed %d of 3", closed.Load()-1)
	}
	if _, _, err := Get(ctx, "k", "2", open("e")); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}
