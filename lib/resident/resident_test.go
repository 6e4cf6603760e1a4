package resident

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestGetFileRewritten: a file written again at once, at the same size,
// is read again by the next GetFile, though its times may not have moved
// (the kernel's clock ticks every few milliseconds, unless it gives a
// file observed since its last change a finer time, as Linux does since
// 6.13); once it has been left alone for Settle, what was made from it is
// kept.
func TestGetFileRewritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "10-block.list")
	ctx := With(context.Background(), New())
	var opened int
	get := func() string {
		v, err := GetFile(ctx, "k", path, func() (string, error) {
			opened++
			b, err := os.ReadFile(path)
			return string(b), err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, want := range []string{"192.0.2.1\n", "192.0.2.2\n", "192.0.2.3\n"} {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != want {
			t.Fatalf("written %q at once after the last: read %q", want, got)
		}
	}
	// Where the times do not move, the version must.
	if a, _ := FileVersion(path); a == mustVersion(t, path) {
		t.Errorf("a file changed just now: the same version twice (%s)", a)
	}
	time.Sleep(Settle)
	if a := mustVersion(t, path); a != mustVersion(t, path) {
		t.Errorf("a settled file: two versions")
	}
	get()
	n := opened
	if get(); opened != n {
		t.Errorf("a settled file was read again: %d opens for one version", opened-n+1)
	}
}

func mustVersion(t *testing.T, path string) string {
	v, err := FileVersion(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
