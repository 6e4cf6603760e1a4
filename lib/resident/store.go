package resident

import (
	"context"
	"time"

	"mf/lib/state"
)

// Store opens the state store as state.Open does, kept open in ctx's set:
// one Redis connection pool for all the stages of a generation instead of
// a connection per message. release ends the caller's use of it.
func Store(ctx context.Context, spec, dir string, timeout time.Duration) (st state.Store, release func(), err error) {
	key := "state\x00" + spec + "\x00" + dir + "\x00" + timeout.String()
	return Get(ctx, key, "", func() (state.Store, func() error, error) {
		st, err := state.Open(spec, dir, timeout)
		if err != nil {
			return nil, nil, err
		}
		return st, st.Close, nil
	})
}

// GetFamily is Get for a value made from a family's entries in st alone
// (the compiled dynamic lists), made again when their version changes
// (the file that holds them, state.Filer, or what the store says,
// state.Versioner), and never closed. When st cannot tell, or the file
// or server cannot be reached, open makes it at each call, and reading
// the entries says why.
func GetFamily[T any](ctx context.Context, key string, st state.Store, family string, open func() (T, error)) (T, error) {
	if From(ctx) == nil {
		return open() // nothing kept: no version needed
	}
	var version string
	switch s := st.(type) {
	case state.Filer:
		version, _ = FileVersion(s.FileOf(family))
	case state.Versioner:
		version, _ = s.Version(ctx, family)
	}
	return keep(ctx, key, version, open)
}
