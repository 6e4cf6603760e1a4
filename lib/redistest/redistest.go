// Package redistest starts a throwaway redis-server for a test, on a Unix
// socket in a directory of its own, killed when the test ends.
package redistest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Start starts redis-server and returns its unix:// URL for state.Open.
// Without redis-server it returns "" after logging why, so that the test
// leaves the Redis backend out; under CI a missing redis-server fails the
// test instead.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server missing (apt-get install redis-server)")
		}
		t.Log("redis-server missing: Redis backend not tested (apt-get install redis-server)")
		return ""
	}
	// Not t.TempDir: a socket's path must be short (108 bytes), and a
	// test's name can be long.
	dir, err := os.MkdirTemp("", "mf-redis")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) })
	for range 200 {
		if _, err := os.Stat(sock); err == nil {
			return "unix://" + sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return ""
}
