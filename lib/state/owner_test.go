package state

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Run as root on a state directory another user owns, every file and
// directory a write creates (the shard directory, shards, lock files,
// compacted shards) belongs to that user, who can go on writing.
func TestRootCreatesStateForTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to create files for another user")
	}
	const nobody = 65534
	top := t.TempDir()
	if err := os.Chown(top, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	s, _ := Open("", top, time.Second)
	ctx := context.Background()
	if err := s.Set(ctx, "dl|block|192.0.2.1", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Enough to compact a shard, which writes a new file.
	for i := range 2000 {
		if _, err := s.Add(ctx, "q:c", int64(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody {
			t.Errorf("%s owned by %d:%d", strings.TrimPrefix(p, top), st.Uid, st.Gid)
		}
		n++
		return nil
	})
	if n < 4 {
		t.Fatalf("only %d files", n)
	}
	// A file an older version left owned by root is mended.
	p := filepath.Join(top, "kv", "3ff.lock")
	os.WriteFile(p, nil, 0o644)
	if err := Own(p); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Fatal("not mended")
	}
}

func TestMkdirAllGivesWhatItCreates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to create files for another user")
	}
	top := t.TempDir()
	os.Chown(top, 65534, 65534)
	if err := MkdirAll(filepath.Join(top, "a", "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if fi, _ := os.Stat(filepath.Join(top, d)); fi.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Errorf("%s not given to the owner", d)
		}
	}
	if fi, _ := os.Stat(top); fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Error("the existing directory changed owner")
	}
}
