// Package resident keeps what is costly to open (state store handles and
// their Redis connections, compiled list images) open across the messages
// of one configuration generation, for mf commands run as stages inside
// mf-bridge's process; a command run as its own process opens and closes
// everything itself, as before.
package resident

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Set is what one configuration generation keeps open. It is safe for
// concurrent use; Close it when no stage of the generation runs any more.
type Set struct {
	mu      sync.Mutex
	m       map[string]*entry
	retired []func() error // closers of entries replaced by a newer version
	closed  bool
}

type entry struct {
	mu      sync.Mutex // held while opening, so concurrent stages open once
	ready   bool
	version string
	v       any
	close   func() error
}

// New returns an empty set.
func New() *Set { return &Set{m: map[string]*entry{}} }

type ctxKey struct{}

// With returns ctx carrying s, for the command run under it.
func With(ctx context.Context, s *Set) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, s)
}

// From returns the set ctx carries, or nil.
func From(ctx context.Context) *Set {
	s, _ := ctx.Value(ctxKey{}).(*Set)
	return s
}

// ErrClosed is returned by Get on a set that was closed.
var ErrClosed = errors.New("resident: set closed")

// Get returns the value kept under key if it was opened at version, and
// otherwise opens it with open and keeps it. version says which state of
// the source the value was made from (a file's size, times and inode):
// a value of another version is replaced, so an edited file is seen by
// the next call. Without a set in ctx, Get just calls open, and release
// closes the value; with one, release does nothing and the set closes
// it. A failed open is not kept: the next call tries again. close may be
// nil.
func Get[T any](ctx context.Context, key, version string, open func() (v T, close func() error, err error)) (v T, release func(), err error) {
	s := From(ctx)
	if s == nil {
		v, closer, err := open()
		if err != nil {
			return v, func() {}, err
		}
		return v, func() {
			if closer != nil {
				closer()
			}
		}, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return v, func() {}, ErrClosed
	}
	e := s.m[key]
	if e == nil {
		e = &entry{}
		s.m[key] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ready && e.version == version {
		return e.v.(T), func() {}, nil
	}
	nv, closer, err := open()
	if err != nil {
		return v, func() {}, err
	}
	if e.ready && e.close != nil {
		// The old value may still be in use by a stage under way; it is
		// closed with the set.
		s.mu.Lock()
		s.retired = append(s.retired, e.close)
		s.mu.Unlock()
	}
	e.v, e.close, e.version, e.ready = nv, closer, version, true
	return nv, func() {}, nil
}

// Close closes every value the set holds. Later calls of Get fail. A nil
// set holds nothing.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	closers := s.retired
	for _, e := range s.m {
		e.mu.Lock()
		if e.ready && e.close != nil {
			closers = append(closers, e.close)
		}
		e.mu.Unlock()
	}
	s.m, s.retired = nil, nil
	s.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// GetFile is Get for a value made from the file at path alone (a list, a
// rule file, resolv.conf), made again when the file changes, and never
// closed. A file that cannot be stat'ed is left to open, uncached, to
// say why it cannot be read.
func GetFile[T any](ctx context.Context, key, path string, open func() (T, error)) (T, error) {
	if From(ctx) == nil {
		return open() // nothing kept: no version needed
	}
	version, err := FileVersion(path)
	if err != nil {
		return open()
	}
	return keep(ctx, key+"\x00"+path, version, open)
}

// keep is Get for a value that is never closed; with no version to tell
// by, open makes it at each call.
func keep[T any](ctx context.Context, key, version string, open func() (T, error)) (T, error) {
	if version == "" {
		return open()
	}
	v, _, err := Get(ctx, key, version, func() (T, func() error, error) {
		v, err := open()
		return v, nil, err
	})
	return v, err
}

// FileVersion names the state of the file at path for Get: its size,
// modification and change times, inode and device, so that an edit, a
// replacement by rename or a touch gives another version. A file changed
// too recently for its times to be trusted (see Settle) has a version of
// its own at each call, so what is made from it is made again each time
// until they can be.
func FileVersion(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	// Read for every stage run of every message: no fmt.
	b := make([]byte, 0, 96)
	b = strconv.AppendInt(b, fi.Size(), 10)
	b = strconv.AppendInt(append(b, ' '), fi.ModTime().UnixNano(), 10)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		b = strconv.AppendInt(append(b, ' '), st.Ctim.Nano(), 10)
		b = strconv.AppendUint(append(b, ' '), st.Ino, 10)
		b = strconv.AppendUint(append(b, ' '), st.Dev, 10)
		if Unsettled(time.Unix(0, st.Ctim.Nano()), time.Now()) {
			b = strconv.AppendUint(append(b, " unsettled "...), unsettledCalls.Add(1), 10)
		}
	}
	return string(b), nil
}

// Unsettled reports whether a file whose change time reads changed may
// have been changed again by the time at without its times showing it
// (see Settle): what was read from it at that time may be older than
// the file with the same times.
func Unsettled(changed, at time.Time) bool {
	settle := settleFine
	if changed.Nanosecond() == 0 {
		settle = Settle
	}
	return at.Sub(changed) < settle
}

// Settle is the longest a file's change is too recent for its times to
// tell its version. File times are read from a clock that moves in steps,
// the kernel's tick of a few milliseconds (whole seconds on ext3 and some
// network file systems, whose times have no nanoseconds), so a file
// written again within one step of the write a value was made from, at
// the same size, would look unchanged and the edit be missed. A change
// is trusted settleFine after it, or Settle after it where its time is in
// whole seconds. The change time is the one read, as no one sets it but
// the kernel. (Linux 6.13 and later give a file observed since its last
// change a finer time, on ext4, xfs, btrfs and tmpfs.)
const Settle = 2 * time.Second

// settleFine is Settle for times in finer steps than seconds: some
// ticks of the kernel's clock.
const settleFine = 50 * time.Millisecond

// unsettledCalls numbers the versions of unsettled files, each unlike
// any other.
var unsettledCalls atomic.Uint64
