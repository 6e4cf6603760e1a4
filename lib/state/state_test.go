package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"mf/lib/redistest"
)

// The test binary doubles as the writer processes of the concurrency and
// crash tests: run with STATE_TEST_JOB set it does that job and exits.
func TestMain(m *testing.M) {
	if h := os.Getenv("STATE_TEST_JOB"); h != "" {
		os.Exit(helper(h, os.Getenv("STATE_TEST_SPEC"), os.Getenv("STATE_TEST_DIR"), os.Getenv("STATE_TEST_N")))
	}
	os.Exit(m.Run())
}

func helper(job, spec, dir, nstr string) int {
	s, err := Open(spec, dir, 30*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	ctx := context.Background()
	n, _ := strconv.Atoi(nstr)
	switch job {
	case "add": // n increments spread over four shared counters
		for i := range n {
			if _, err := s.Add(ctx, fmt.Sprintf("c:%d", i%4), 1, time.Hour); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	case "crash": // write until killed, every value checkable on its own
		for i := 0; ; i++ {
			if _, err := s.Add(ctx, fmt.Sprintf("c:%d", i%7), 1, time.Hour); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			v := checkable(i)
			if err := s.Set(ctx, fmt.Sprintf("r:%d", i%101), v, time.Hour); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	return 0
}

// checkable is a value that shows whether it was torn: a number, its hash
// and padding to make the shard files large.
func checkable(i int) []byte {
	s := strconv.Itoa(i)
	return fmt.Appendf(nil, "%s %x %s", s, sha256.Sum256([]byte(s)), strings.Repeat("x", 200))
}

func consistent(v []byte) bool {
	f := strings.Fields(string(v))
	return len(f) == 3 && bytes.Equal(checkable(atoi(f[0])), v)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// backend is a store under test and how a helper process reaches it.
type backend struct {
	name      string
	spec, dir string
}

func (b backend) open(t testing.TB) Store {
	s, err := Open(b.spec, b.dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backends are a fresh state directory and, when redis-server is
// installed, a fresh redis-server on a Unix socket. Under CI a missing
// redis-server fails the test.
func backends(t testing.TB) []backend {
	bs := []backend{{name: "dir", dir: t.TempDir()}}
	if url := redistest.Start(t); url != "" {
		bs = append(bs, backend{name: "redis", spec: url})
	}
	return bs
}

func forEach(t *testing.T, f func(t *testing.T, b backend, s Store)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b, b.open(t)) })
	}
}

func TestCounters(t *testing.T) {
	forEach(t, func(t *testing.T, _ backend, s Store) {
		ctx := context.Background()
		for i, want := range []int64{3, 5, 4} {
			got, err := s.Add(ctx, "n", []int64{3, 2, -1}[i], 300*time.Millisecond)
			if err != nil || got != want {
				t.Fatalf("add %d: %d, %v; want %d", i, got, err, want)
			}
		}
		e, ok, err := s.Get(ctx, "n")
		if err != nil || !ok || string(e.Value) != "4" || e.Expires.IsZero() {
			t.Fatalf("get: %+v %v %v", e, ok, err)
		}
		time.Sleep(400 * time.Millisecond)
		if _, ok, _ := s.Get(ctx, "n"); ok {
			t.Fatal("counter outlived its ttl")
		}
		if got, err := s.Add(ctx, "n", 1, 0); got != 1 || err != nil {
			t.Fatalf("add after expiry: %d %v, want a fresh 1", got, err)
		}
		if e, _, _ := s.Get(ctx, "n"); !e.Expires.IsZero() {
			t.Fatalf("ttl 0 expires at %v", e.Expires)
		}
	})
}

func TestRecords(t *testing.T) {
	forEach(t, func(t *testing.T, _ backend, s Store) {
		ctx := context.Background()
		odd := "list:block:a*b?[c]\n\x00 \\ é"
		for _, k := range []string{"list:block:192.0.2.1", odd, "list:blockx:1", "other:1"} {
			if err := s.Set(ctx, k, []byte("v "+k), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Set(ctx, "list:block:short", []byte("x"), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		es, err := s.Scan(ctx, "list:block:")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range es {
			keys = append(keys, e.Key)
			if string(e.Value) != "v "+e.Key {
				t.Errorf("%q holds %q", e.Key, e.Value)
			}
			if d := time.Until(e.Expires); d < 59*time.Minute || d > time.Hour {
				t.Errorf("%q expires in %v", e.Key, d)
			}
		}
		if want := []string{"list:block:192.0.2.1", odd}; fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Fatalf("scan: %q, want %q", keys, want)
		}
		if es, _ := s.Scan(ctx, "list:block:a*"); len(es) != 1 || es[0].Key != odd {
			t.Fatalf("glob characters in a prefix are literal: %v", es)
		}
		if ok, err := s.SetNX(ctx, odd, []byte("new"), time.Hour); ok || err != nil {
			t.Fatalf("setnx over a live key: %v %v", ok, err)
		}
		if ok, err := s.SetNX(ctx, "list:block:short", []byte("new"), time.Hour); !ok || err != nil {
			t.Fatalf("setnx over an expired key: %v %v", ok, err)
		}
		if ok, err := s.Delete(ctx, odd); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, _ := s.Delete(ctx, odd); ok {
			t.Fatal("deleted twice")
		}
		if _, ok, _ := s.Get(ctx, odd); ok {
			t.Fatal("deleted key still there")
		}
	})
}

func TestLeases(t *testing.T) {
	forEach(t, func(t *testing.T, _ backend, s Store) {
		ctx := context.Background()
		step := func(id string, limit int, wantOK bool, wantN int) {
			t.Helper()
			ok, n, err := s.Lease(ctx, "conc", id, limit, 300*time.Millisecond)
			if err != nil || ok != wantOK || n != wantN {
				t.Fatalf("lease %s/%d: %v %d %v, want %v %d", id, limit, ok, n, err, wantOK, wantN)
			}
		}
		step("a", 2, true, 1)
		step("b", 2, true, 2)
		step("c", 2, false, 2)
		step("c", 3, true, 3) // room kept for some callers
		step("a", 2, true, 3) // renewing a held slot always works
		if err := s.Release(ctx, "conc", "a"); err != nil {
			t.Fatal(err)
		}
		step("d", 3, true, 3)
		time.Sleep(400 * time.Millisecond)
		step("e", 1, true, 1) // the others expired
	})
}

func TestExpireBoundsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	st, _ := OpenDir(dir, time.Second)
	s := st.(*dirStore)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	ctx := context.Background()
	for i := range 5000 {
		if err := s.Set(ctx, fmt.Sprintf("k:%d", i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "keep", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, size := dirSize(t, dir); size < 5000*10 {
		t.Fatalf("5000 keys in %d bytes?", size)
	}
	clock = clock.Add(2 * time.Minute)
	n, err := s.Expire(ctx)
	if err != nil || n != 5000 {
		t.Fatalf("expire dropped %d, %v; want 5000", n, err)
	}
	files, size := dirSize(t, dir)
	if files > 2*Shards || size > 64<<10 {
		t.Fatalf("after expiry: %d files, %d bytes", files, size)
	}
	if _, ok, _ := s.Get(ctx, "keep"); !ok {
		t.Fatal("live key dropped")
	}
}

func dirSize(t testing.TB, dir string) (files int, size int64) {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		fi, _ := de.Info()
		files++
		size += fi.Size()
	}
	return files, size
}

func TestLockTimeout(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenDir(dir, 200*time.Millisecond)
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03x.lock", shardOf("k"))))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Add(context.Background(), "k", 1, 0)
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("add under a held lock: %v after %v", err, time.Since(start))
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if v, err := s.Add(context.Background(), "k", 1, 0); v != 1 || err != nil {
		t.Fatalf("after the lock was freed: %d %v", v, err)
	}
}

// TestTornShard: a record cut short (a crash mid-write, a power loss)
// is skipped and cut off by the next writer; a shard that does not even
// start right is an error, not an empty store.
func TestTornShard(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenDir(dir, time.Second)
	ctx := context.Background()
	k1, k2 := "a", "b"
	for i := 0; shardOf(k2) != shardOf(k1); i++ {
		k2 = fmt.Sprintf("b%d", i)
	}
	s.Set(ctx, k1, []byte("one"), 0)
	s.Set(ctx, k2, []byte("two"), 0)
	p := filepath.Join(dir, fmt.Sprintf("%03x.kv", shardOf(k1)))
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-3], 0o644)
	if e, ok, err := s.Get(ctx, k1); !ok || err != nil || string(e.Value) != "one" {
		t.Fatalf("whole record before a torn one: %q %v %v", e.Value, ok, err)
	}
	if _, ok, err := s.Get(ctx, k2); ok || err != nil {
		t.Fatalf("torn record read back: %v %v", ok, err)
	}
	if err := s.Set(ctx, k2, []byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.Get(ctx, k2); string(e.Value) != "again" {
		t.Fatalf("after the torn tail was cut off: %q", e.Value)
	}
	if e, _, _ := s.Get(ctx, k1); string(e.Value) != "one" {
		t.Fatalf("after the torn tail was cut off, k1: %q", e.Value)
	}
	os.WriteFile(p, []byte("garbage that is no shard"), 0o644)
	if _, _, err := s.Get(ctx, k1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage shard: %v, want ErrCorrupt", err)
	}
	if _, err := s.Add(ctx, k1, 1, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("write over a garbage shard: %v, want ErrCorrupt", err)
	}
}

func TestOpenRefusesUnknownSpec(t *testing.T) {
	if _, err := Open("memcached://x", "/tmp", time.Second); err == nil {
		t.Fatal("unknown URL accepted")
	}
}

func spawn(t *testing.T, b backend, job string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STATE_TEST_JOB="+job, "STATE_TEST_SPEC="+b.spec, "STATE_TEST_DIR="+b.dir, "STATE_TEST_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestConcurrentProcesses: 32 processes add 10,000 times each to four
// shared counters; not one update may be lost.
func TestConcurrentProcesses(t *testing.T) {
	procs, n := 32, 10000
	if testing.Short() {
		n = 500
	}
	forEach(t, func(t *testing.T, b backend, s Store) {
		start := time.Now()
		var cmds []*exec.Cmd
		for range procs {
			cmds = append(cmds, spawn(t, b, "add", n))
		}
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Fatalf("writer: %v", err)
			}
		}
		var sum int64
		for i := range 4 {
			e, _, err := s.Get(context.Background(), fmt.Sprintf("c:%d", i))
			if err != nil {
				t.Fatal(err)
			}
			v, _ := strconv.ParseInt(string(e.Value), 10, 64)
			sum += v
		}
		if want := int64(procs * n); sum != want {
			t.Fatalf("sum %d, want %d: updates lost", sum, want)
		}
		t.Logf("%d increments by %d processes in %v", procs*n, procs, time.Since(start))
	})
}

// TestKilledWriters kills writers with SIGKILL at random points, again
// and again, then checks that the store opens and every value in it is
// whole.
func TestKilledWriters(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s Store) {
		for round := range 15 {
			var cmds []*exec.Cmd
			for range 4 {
				cmds = append(cmds, spawn(t, b, "crash", 0))
			}
			time.Sleep(time.Duration(30+round*7) * time.Millisecond)
			for _, c := range cmds {
				c.Process.Signal(syscall.SIGKILL)
				c.Wait()
			}
		}
		ctx := context.Background()
		recs, err := s.Scan(ctx, "r:")
		if err != nil {
			t.Fatalf("after kills: %v", err)
		}
		if len(recs) == 0 {
			t.Fatal("no record survived: the writers never wrote")
		}
		for _, e := range recs {
			if !consistent(e.Value) {
				t.Fatalf("%s holds a torn value %.40q", e.Key, e.Value)
			}
		}
		cs, _ := s.Scan(ctx, "c:")
		for _, e := range cs {
			if _, err := strconv.ParseInt(string(e.Value), 10, 64); err != nil {
				t.Fatalf("counter %s = %q", e.Key, e.Value)
			}
		}
		// Writes still work where killed writers left off.
		if _, err := s.Add(ctx, "c:0", 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d records and %d counters whole after 60 kills", len(recs), len(cs))
	})
}

// TestFamily: a Scan over a family sees its keys and nothing else, and
// keeps up with sets, deletes, expiry and counters.
func TestFamily(t *testing.T) {
	forEach(t, func(t *testing.T, _ backend, s Store) {
		ctx := context.Background()
		s.Set(ctx, "dl|block|192.0.2.1", []byte("a"), time.Hour)
		s.Set(ctx, "dl|block|192.0.2.2", []byte("b"), 100*time.Millisecond)
		s.Set(ctx, "dl|other|x", []byte("c"), 0)
		s.SetNX(ctx, "dl|block|192.0.2.3", []byte("d"), time.Hour)
		s.Add(ctx, "dl|block|n", 5, time.Hour)
		s.Set(ctx, "dlx|block|1", []byte("no"), time.Hour)
		s.Set(ctx, "dl:block:1", []byte("no"), time.Hour)
		s.Delete(ctx, "dl|block|192.0.2.3")
		time.Sleep(200 * time.Millisecond)
		es, err := s.Scan(ctx, "dl|block|")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Key+"="+string(e.Value))
		}
		if want := "[dl|block|192.0.2.1=a dl|block|n=5]"; fmt.Sprint(got) != want {
			t.Fatalf("scan dl|block|: %v, want %s", got, want)
		}
		if es, _ := s.Scan(ctx, "dl|"); len(es) != 3 {
			t.Fatalf("scan dl|: %d entries, want 3", len(es))
		}
	})
}

// TestDirCreatedByFirstWrite: reading a store nobody wrote creates
// nothing and finds nothing; the first write creates the directory.
func TestDirCreatedByFirstWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "kv")
	s, _ := OpenDir(dir, time.Second)
	ctx := context.Background()
	if _, ok, err := s.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("get: %v %v", ok, err)
	}
	if es, err := s.Scan(ctx, "dl|"); len(es) != 0 || err != nil {
		t.Fatalf("scan: %v %v", es, err)
	}
	if n, err := s.Expire(ctx); n != 0 || err != nil {
		t.Fatalf("expire: %v %v", n, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("reading created the directory: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.Get(ctx, "k"); string(e.Value) != "v" {
		t.Fatalf("after the first write: %q", e.Value)
	}
}

// TestVersion: Redis's version of a family changes with every entry of
// it set, added to or deleted, and with an entry that a writer which
// does not count its changes (an older mf, redis-cli) adds or deletes;
// not with a key of another family or of none, nor with a write that
// changed nothing.
func TestVersion(t *testing.T) {
	url := redistest.Start(t)
	if url == "" {
		t.Skip("redis-server missing: the Redis store's version not tested")
	}
	s := backend{name: "redis", spec: url}.open(t)
	v, ok := s.(Versioner)
	if !ok {
		t.Fatal("the Redis store has no Version")
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(o)
	defer raw.Close()
	ctx := context.Background()
	version := func() string {
		t.Helper()
		n, err := v.Version(ctx, "dl|")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, step := range []struct {
		what    string
		do      func() error
		changes bool
	}{
		{"a key of another family set", func() error { return s.Set(ctx, "gl|a", []byte("1"), time.Hour) }, false},
		{"a key of no family set", func() error { return s.Set(ctx, "plain", []byte("1"), time.Hour) }, false},
		{"an entry set", func() error { return s.Set(ctx, "dl|a", []byte("1"), time.Hour) }, true},
		{"the same entry set again", func() error { return s.Set(ctx, "dl|a", []byte("2"), 0) }, true},
		{"an entry set if new, when it is not", func() error { _, err := s.SetNX(ctx, "dl|a", []byte("3"), time.Hour); return err }, false},
		{"an entry set if new", func() error { _, err := s.SetNX(ctx, "dl|b", []byte("1"), time.Hour); return err }, true},
		{"a counter of the family added to", func() error { _, err := s.Add(ctx, "dl|c", 1, time.Hour); return err }, true},
		{"an entry deleted", func() error { _, err := s.Delete(ctx, "dl|a"); return err }, true},
		{"an entry deleted that is not there", func() error { _, err := s.Delete(ctx, "dl|zz"); return err }, false},
		{"an entry written straight into Redis", func() error {
			raw.Set(ctx, "mf:dl|d", "1", 0)
			return raw.ZAdd(ctx, "mf:index:dl|", redis.Z{Score: math.Inf(1), Member: "mf:dl|d"}).Err()
		}, true},
		{"an entry deleted straight from Redis", func() error {
			raw.Del(ctx, "mf:dl|b")
			return raw.ZRem(ctx, "mf:index:dl|", "mf:dl|b").Err()
		}, true},
	} {
		before := version()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if after := version(); (after != before) != step.changes {
			t.Errorf("%s: version %q, then %q; want a change: %v", step.what, before, after, step.changes)
		}
	}
}
