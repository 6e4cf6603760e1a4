// Package state is the store that quotas, dynamic lists and greylisting
// share between short-lived processes: a directory of flock(2)-locked
// shard files on one host, or a Redis server for several.
package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrTimeout is wrapped by operations that waited too long for a lock or
// for the server; a stage gives up with exit 75.
var ErrTimeout = errors.New("timed out waiting for the state store")

// Entry is one stored record or counter. A counter's Value is its decimal
// value. Expires is zero for an entry that never expires.
type Entry struct {
	Key     string
	Value   []byte
	Expires time.Time
}

// Family is the part of key up to and including its first '|', or "".
// Keys of one family are the ones read together (all entries of the
// dynamic lists, "dl|..."): the directory backend keeps a family in one
// shard and the Redis backend indexes it, so a Scan whose prefix names a
// family reads that family alone, however many other keys there are.
func Family(key string) string {
	if i := strings.IndexByte(key, '|'); i >= 0 {
		return key[:i+1]
	}
	return ""
}

// Store is what both backends offer. Every operation on one key is atomic
// across processes and hosts sharing the store. A ttl of 0 means no expiry.
type Store interface {
	// Add adds n to the counter key, creating it with ttl if it does not
	// exist (or has expired), and returns the new value.
	Add(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	// Set stores val under key, replacing what was there.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val under key only if key holds nothing, and reports
	// whether it did.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Get returns the entry under key, if there is a live one.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// Scan returns every live entry whose key starts with prefix, in key
	// order.
	Scan(ctx context.Context, prefix string) ([]Entry, error)
	// Delete removes key and reports whether it was there.
	Delete(ctx context.Context, key string) (bool, error)
	// Lease takes or renews the slot id in the lease set key for ttl, if
	// fewer than max other live slots are held, and returns the number of
	// live slots after the call. A lease ends when it expires or is
	// released.
	Lease(ctx context.Context, key, id string, max int, ttl time.Duration) (ok bool, n int, err error)
	// Release ends the slot id in the lease set key.
	Release(ctx context.Context, key, id string) error
	// Expire drops expired entries now and returns how many it dropped.
	// Both backends also drop them on their own; this bounds the space
	// expired entries hold until then.
	Expire(ctx context.Context) (int, error)
	Close() error
}

// Filer is a store that keeps every entry of a family (Family) in one
// file, so that any change to them changes that file: what was made from
// a Scan of them may be kept while the file's version (resident.FileVersion)
// stays the same.
type Filer interface {
	FileOf(family string) string
}

// Versioner is a store that names the state of a family's entries: what
// was made from a Scan of them may be kept while Version gives the same
// string. It changes when an entry is set, added to or deleted; an entry
// that expires need not change it, so what is kept must watch expiry
// itself (lists.Dynamics does).
type Versioner interface {
	Version(ctx context.Context, family string) (string, error)
}

// Open opens the store spec names: a redis://, rediss:// (TLS) or
// unix:// URL, or else the directory dir/kv under the state directory.
// timeout bounds every wait for a lock or the server.
func Open(spec, dir string, timeout time.Duration, opts ...Option) (Store, error) {
	for _, p := range []string{"redis://", "rediss://", "unix://"} {
		if strings.HasPrefix(spec, p) {
			return OpenRedis(spec, timeout)
		}
	}
	if spec != "" {
		return nil, fmt.Errorf("state %q: not a redis://, rediss:// or unix:// URL", spec)
	}
	if dir == "" {
		return nil, errors.New("state: no state directory")
	}
	return OpenDir(filepath.Join(dir, "kv"), timeout, opts...)
}

// Option is a setting of Open.
type Option func(*dirStore)

// Warnf has the store report through f what it mends on its own and
// does not fail on: damage in a shard, skipped, and the shard rewritten
// without it. Without it, warnings go to stderr as "PROG: warning: ...".
func Warnf(f func(format string, args ...any)) Option {
	return func(s *dirStore) { s.warnf = f }
}

func stderrWarnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: warning: %s\n", filepath.Base(os.Args[0]), fmt.Sprintf(format, args...))
}
