package state

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Overlay returns a store that reads st but writes only to memory: a
// stage run with --dry-run (or by mf-bridge test) decides on the real
// counts and entries, sees its own writes for as long as it runs, and
// leaves st as it was.
func Overlay(st Store) Store {
	return &overlay{st: st, mem: map[string]*Entry{}, gone: map[string]bool{}}
}

type overlay struct {
	st   Store
	mu   sync.Mutex
	mem  map[string]*Entry
	gone map[string]bool
}

func (o *overlay) get(ctx context.Context, key string) (Entry, bool, error) {
	if e, ok := o.mem[key]; ok {
		if !e.Expires.IsZero() && time.Now().After(e.Expires) {
			return Entry{}, false, nil
		}
		return *e, true, nil
	}
	if o.gone[key] {
		return Entry{}, false, nil
	}
	return o.st.Get(ctx, key)
}

func expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return time.Now().Add(ttl)
}

func (o *overlay) Add(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok, err := o.get(ctx, key)
	if err != nil {
		return 0, err
	}
	var v int64
	if ok {
		v, _ = strconv.ParseInt(string(e.Value), 10, 64)
	} else {
		e = Entry{Key: key, Expires: expiry(ttl)}
	}
	v += n
	e.Value = []byte(strconv.FormatInt(v, 10))
	o.mem[key] = &e
	return v, nil
}

func (o *overlay) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mem[key] = &Entry{Key: key, Value: append([]byte(nil), val...), Expires: expiry(ttl)}
	return nil
}

func (o *overlay) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok, err := o.get(ctx, key); err != nil || ok {
		return false, err
	}
	o.mem[key] = &Entry{Key: key, Value: append([]byte(nil), val...), Expires: expiry(ttl)}
	return true, nil
}

func (o *overlay) Get(ctx context.Context, key string) (Entry, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.get(ctx, key)
}

func (o *overlay) Scan(ctx context.Context, prefix string) ([]Entry, error) {
	under, err := o.st.Scan(ctx, prefix)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Entry
	for _, e := range under {
		if _, mine := o.mem[e.Key]; !mine && !o.gone[e.Key] {
			out = append(out, e)
		}
	}
	for k := range o.mem {
		if e, ok, _ := o.get(ctx, k); ok && strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (o *overlay) Delete(ctx context.Context, key string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok, err := o.get(ctx, key)
	delete(o.mem, key)
	o.gone[key] = true
	return ok, err
}

// Lease grants the slot without asking the real store, whose Lease would
// take one: a dry run never holds, nor is refused, a concurrency slot.
func (o *overlay) Lease(ctx context.Context, key, id string, max int, ttl time.Duration) (bool, int, error) {
	return true, 1, nil
}

func (o *overlay) Release(ctx context.Context, key, id string) error { return nil }
func (o *overlay) Expire(ctx context.Context) (int, error)           { return 0, nil }
func (o *overlay) Close() error                                      { return o.st.Close() }

// Reachable checks that the store spec and dir name (as for Open) can be
// used: a Redis server answers, a state directory exists or can be made,
// and is writable by this process.
func Reachable(ctx context.Context, spec, dir string, timeout time.Duration) error {
	st, err := Open(spec, dir, timeout)
	if err != nil {
		return err
	}
	defer st.Close()
	if spec != "" {
		if _, _, err := st.Get(ctx, "mf|reachable"); err != nil {
			return err
		}
		return nil
	}
	// The nearest directory that exists must take the files to come.
	p := filepath.Join(dir, "kv")
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return errors.New("state: " + p + " is not a directory")
			}
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				return &fs.PathError{Op: "state: not writable", Path: p, Err: err}
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(p) == p {
			return &fs.PathError{Op: "state", Path: p, Err: err}
		}
		p = filepath.Dir(p)
	}
}
