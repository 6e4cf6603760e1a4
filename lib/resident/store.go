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
