package state

import (
	"context"
	"testing"
	"time"
)

// An overlay reads the real store, sees its own writes, and leaves the
// real store untouched.
func TestOverlay(t *testing.T) {
	ctx := context.Background()
	real, err := OpenDir(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := real.Add(ctx, "q|a", 5, time.Hour); err != nil {
		t.Fatal(err)
	}
	o := Overlay(real)
	if n, err := o.Add(ctx, "q|a", 2, time.Hour); err != nil || n != 7 {
		t.Fatalf("overlay Add = %d, %v; want 7 on top of the real 5", n, err)
	}
	if n, _ := o.Add(ctx, "q|a", 1, time.Hour); n != 8 {
		t.Fatalf("overlay sees its own writes: got %d, want 8", n)
	}
	if err := o.Set(ctx, "dl|x|192.0.2.1", []byte("e"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if es, _ := o.Scan(ctx, "dl|"); len(es) != 1 {
		t.Fatalf("overlay Scan = %v, want its own entry", es)
	}
	if ok, _ := o.Delete(ctx, "q|a"); !ok {
		t.Fatal("overlay Delete of a real key: not there")
	}
	if _, ok, _ := o.Get(ctx, "q|a"); ok {
		t.Fatal("a key deleted in the overlay is still seen")
	}
	e, ok, err := real.Get(ctx, "q|a")
	if err != nil || !ok || string(e.Value) != "5" {
		t.Fatalf("real store after overlay writes: %q %v %v, want 5", e.Value, ok, err)
	}
	if es, _ := real.Scan(ctx, "dl|"); len(es) != 0 {
		t.Fatalf("real store got a dynamic entry: %v", es)
	}
}

func TestReachable(t *testing.T) {
	ctx := context.Background()
	if err := Reachable(ctx, "", t.TempDir()+"/not/yet", time.Second); err != nil {
		t.Fatalf("a state dir that can be made: %v", err)
	}
	if err := Reachable(ctx, "", "/dev/null", time.Second); err == nil {
		t.Fatal("a state dir under a file: no error")
	}
	if err := Reachable(ctx, "redis://127.0.0.1:1/0", "", 200*time.Millisecond); err == nil {
		t.Fatal("a Redis server that does not answer: no error")
	}
}
