package lists

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mf/lib/state"
)

// A FIFO (or any file that is not a regular one) named *.list is refused
// at once instead of blocking the stage for ever.
func TestNonRegularListRefused(t *testing.T) {
	dir := t.TempDir()
	writeList(t, dir, "10-ok.list", "match: sender\naction: block\n@example.org\n")
	fifo := filepath.Join(dir, "20-fifo.list")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	paths, err := Dir(dir)
	if err != nil || len(paths) != 2 {
		t.Fatal(paths, err)
	}
	for _, cache := range []string{"", filepath.Join(dir, "cache")} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(paths, Options{CacheDir: cache, LockTimeout: time.Second})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "20-fifo.list: not a regular file") {
				t.Fatalf("cache %q: %v", cache, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("cache %q: blocked on the FIFO", cache)
		}
	}
	// Swapped in after the list was read, the entry shown for a hit is
	// "?", not a hang.
	p := writeList(t, dir, "30.list", "match: sender\naction: block\n@example.net\n")
	l, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	syscall.Mkfifo(p, 0o644)
	h, ok := l.Match(&Query{Sender: "a@example.net"})
	if !ok || h.Entry() != "?" {
		t.Fatalf("hit %v %q", ok, h.Entry())
	}
}

func TestParseNet(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8": "10.0.0.0/8", "10.0.0.1": "10.0.0.1/32", "2001:db8::/32": "2001:db8::/32",
		"::ffff:192.0.2.1": "192.0.2.1/32", "0.0.0.0/0": "0.0.0.0/0",
	} {
		if p, err := ParseNet(in); err != nil || p.String() != want {
			t.Errorf("%q: %v %v, want %s", in, p, err, want)
		}
	}
	for in, why := range map[string]string{
		"10.0.0.1/8": "host bits set; the network is 10.0.0.0/8", "::ffff:192.0.2.0/120": "IPv4 form",
		"fe80::1%eth0": "not an IP address", "10.0.0.0/33": "not an IP network", "example.org": "not an IP address",
		"": "not an IP address",
	} {
		if _, err := ParseNet(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want %q", in, err, why)
		}
	}
}

func TestNonRegularShardRefused(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStore(t, dir)
	ctx := context.Background()
	if _, err := AddDynamic(ctx, st, "b", "192.0.2.1", time.Hour, "", ""); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "*.kv"))
	if len(shards) != 1 {
		t.Fatal(shards)
	}
	os.Remove(shards[0])
	syscall.Mkfifo(shards[0], 0o644)
	done := make(chan error, 1)
	go func() { _, err := Dynamic(ctx, st, ""); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("FIFO shard: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked on a FIFO shard")
	}
}

func openStore(t *testing.T, dir string) (state.Store, error) {
	t.Helper()
	return state.OpenDir(dir, time.Second)
}

// A list file's name follows the one name rule: it goes into traces
// ("list=NAME"), logs and tag fields.
func TestListFileName(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a b.list", "-x.list", "x|y.list", "caf\xc3\xa9.list"} {
		p := writeList(t, dir, n, "match: sender\naction: tag\n@example.org\n")
		if _, err := Open(p, Options{}); err == nil || !strings.Contains(err.Error(), "list name") {
			t.Errorf("%q: %v", n, err)
		}
	}
	if _, err := Open(writeList(t, dir, "10-tag_2.x.list", "match: sender\naction: tag\n@example.org\n"), Options{}); err != nil {
		t.Error(err)
	}
}
