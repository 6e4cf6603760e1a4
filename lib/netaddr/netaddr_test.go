package netaddr

import (
	"context"
	"net"
	"path/filepath"
	"testing"
)

func TestSplitCheck(t *testing.T) {
	for a, want := range map[string][2]string{
		"unix:/run/clamd.ctl": {"unix", "/run/clamd.ctl"},
		"/run/clamd.ctl":      {"unix", "/run/clamd.ctl"},
		"tcp:127.0.0.1:3310":  {"tcp", "127.0.0.1:3310"},
		"127.0.0.1:783":       {"tcp", "127.0.0.1:783"},
	} {
		if n, addr := Split(a); n != want[0] || addr != want[1] || Check("x", a) != nil {
			t.Errorf("%q: %s %s %v", a, n, addr, Check("x", a))
		}
	}
	for _, bad := range []string{"", "unix:", "tcp:nohost", "localhost"} {
		if Check("clamd", bad) == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

// The first address that answers is the one used; the errors of those
// that did not are kept when none does.
func TestDialFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dead := "unix:" + filepath.Join(t.TempDir(), "none")
	conn, a, err := DialFirst(context.Background(), []string{dead, ln.Addr().String()}, 0)
	if err != nil || a != ln.Addr().String() {
		t.Fatalf("%q %v", a, err)
	}
	conn.Close()
	if _, _, err := DialFirst(context.Background(), []string{dead}, 0); err == nil {
		t.Error("a dead socket answered")
	}
	if _, _, err := DialFirst(context.Background(), nil, 0); err == nil {
		t.Error("no address answered")
	}
}
