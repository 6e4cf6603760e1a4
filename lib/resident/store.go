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

// FamilyVersion names the state of a family's entries in st (see Get):
// the version of the file that holds them (state.Filer), or what the
// store itself says (state.Versioner). It is "" when st cannot tell, or
// the file or server cannot be reached: reading the entries then says
// why.
func FamilyVersion(ctx context.Context, st state.Store, family string) string {
	var v string
	switch s := st.(type) {
	case state.Filer:
		v, _ = FileVersion(s.FileOf(family))
	case state.Versioner:
		v, _ = s.Version(ctx, family)
	}
	return v
}
