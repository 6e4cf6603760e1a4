package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A damaged record in the middle of a shard is reported, and the records
// after it are kept: the next writer neither truncates there nor counts
// from the last record before it.
func TestDamageInTheMiddle(t *testing.T) {
	for _, at := range []string{"first", "middle", "several"} {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			var warned []string
			s, _ := OpenDir(dir, time.Second, Warnf(func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				warned = append(warned, fmt.Sprintf(f, a...))
			}))
			ctx := context.Background()
			other := "o"
			for i := 0; shardOf(other) != shardOf("k"); i++ {
				other = fmt.Sprintf("o%d", i)
			}
			s.Set(ctx, other, []byte("kept"), 0)
			var ends []int64
			p := filepath.Join(dir, fmt.Sprintf("%03x.kv", shardOf("k")))
			for range 50 {
				if _, err := s.Add(ctx, "k", 1, 0); err != nil {
					t.Fatal(err)
				}
				fi, _ := os.Stat(p)
				ends = append(ends, fi.Size())
			}
			data, _ := os.ReadFile(p)
			switch at {
			case "first": // the record of "other"
				data[headerLen+3] ^= 0xff
			case "middle":
				data[ends[24]-2] ^= 0xff // the CRC of the 26th count
			case "several":
				for _, i := range []int{5, 6, 30} {
					data[ends[i]-6] ^= 0x55
				}
			}
			os.WriteFile(p, data, 0o644)
			if e, ok, err := s.Get(ctx, "k"); !ok || err != nil || string(e.Value) != "50" {
				t.Fatalf("read past the damage: %q %v %v", e.Value, ok, err)
			}
			if len(warned) == 0 || !strings.Contains(warned[0], p) || !strings.Contains(warned[0], "damaged") {
				t.Fatalf("damage not reported: %q", warned)
			}
			if v, err := s.Add(ctx, "k", 1, 0); v != 51 || err != nil {
				t.Fatalf("count after the damage: %d %v, want 51", v, err)
			}
			e, ok, _ := s.Get(ctx, other)
			if at == "first" {
				if ok {
					t.Fatalf("the damaged record read back: %q", e.Value)
				}
			} else if string(e.Value) != "kept" {
				t.Fatalf("a record before the damage: %q %v", e.Value, ok)
			}
			data, _ = os.ReadFile(p)
			if sh, err := decode(data); err != nil || len(sh.damage) != 0 || sh.good != int64(len(data)) {
				t.Fatalf("the shard still damaged after a write: %+v %v", sh.damage, err)
			}
		})
	}
}

// Expire rewrites a damaged shard even when nothing in it expired.
func TestExpireMendsDamage(t *testing.T) {
	dir := t.TempDir()
	n := 0
	s, _ := OpenDir(dir, time.Second, Warnf(func(string, ...any) { n++ }))
	ctx := context.Background()
	for range 3 {
		s.Add(ctx, "k", 1, 0)
	}
	p := filepath.Join(dir, fmt.Sprintf("%03x.kv", shardOf("k")))
	data, _ := os.ReadFile(p)
	data[headerLen+2] ^= 0xff
	os.WriteFile(p, data, 0o644)
	if _, err := s.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(p)
	if sh, _ := decode(data); len(sh.damage) != 0 || n == 0 {
		t.Fatalf("after expire: damage %v, %d warnings", sh.damage, n)
	}
	if e, _, _ := s.Get(ctx, "k"); string(e.Value) != "3" {
		t.Fatalf("count %q", e.Value)
	}
}

// Looking for the record after damage tries every offset; it stays
// linear, so a shard of garbage costs about what reading a whole shard
// of its size costs, not minutes.
func TestDamageScanIsLinear(t *testing.T) {
	junk := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	damaged := appendRecord(append(header(), junk...), "k", rec{[]byte("v"), 0})
	clean := header()
	for i := 0; len(clean) < len(damaged); i++ {
		clean = appendRecord(clean, fmt.Sprintf("q:rule key%d 60 1", i%5000), rec{[]byte("12345"), 1e12})
	}
	timed := func(data []byte) (shard, time.Duration) {
		best := time.Hour
		var sh shard
		for range 3 {
			start := time.Now()
			sh, _ = decode(data)
			best = min(best, time.Since(start))
		}
		return sh, best
	}
	sh, d := timed(damaged)
	if string(sh.m["k"].val) != "v" || len(sh.damage) == 0 {
		t.Fatalf("record after 1 MiB of damage: %v", sh.m)
	}
	_, c := timed(clean)
	t.Logf("1 MiB: of damage skipped in %v, of records read in %v", d, c)
	if d > 50*c+50*time.Millisecond {
		t.Fatalf("1 MiB of damage took %v, 1 MiB of records %v", d, c)
	}
}

// A FIFO put in place of a shard is refused by readers and writers alike,
// at once: reading it would wait for a writer that never comes.
func TestShardNotRegular(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenDir(dir, time.Second)
	ctx := context.Background()
	key := "dl|block|192.0.2.1"
	if err := syscall.Mkfifo(filepath.Join(dir, fmt.Sprintf("%03x.kv", shardOf(key))), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.Add(ctx, key, 1, time.Hour); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Add: %v, want not a regular file", err)
		}
		if _, _, err := s.Get(ctx, key); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Get: %v, want not a regular file", err)
		}
		if _, err := s.Scan(ctx, "dl|"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Scan: %v, want not a regular file", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on the FIFO")
	}
}
