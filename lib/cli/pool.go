package cli

import (
	"context"
	"sync"

	"mf/lib/config"
	"mf/lib/resident"
)

// parsers are the spare parsers of one command, each with its own flag
// struct, kept in a resident set: a command run as a stage inside
// mf-bridge builds kong's model of itself once per concurrent run rather
// than once per message.
type parsers struct {
	mu   sync.Mutex
	free []*parser
}

type parser struct {
	p *config.Parser
	c Globaler
}

// parserFor takes a spare parser of p from ctx's resident set, or builds
// one over fresh; put gives it back. Without a set it returns nil.
func parserFor(ctx context.Context, p Program, fresh Globaler) (ps *parser, put func(), err error) {
	if resident.From(ctx) == nil {
		return nil, nil, nil
	}
	pool, _, err := resident.Get(ctx, "cli\x00"+p.Name, "", func() (*parsers, func() error, error) { return &parsers{}, nil, nil })
	if err != nil {
		return nil, nil, err
	}
	pool.mu.Lock()
	if n := len(pool.free); n > 0 {
		ps = pool.free[n-1]
		pool.free = pool.free[:n-1]
	}
	pool.mu.Unlock()
	if ps == nil {
		cp, err := config.NewParser(fresh, p.Name, p.Section, p.Description)
		if err != nil {
			return nil, nil, err
		}
		ps = &parser{p: cp, c: fresh}
	}
	return ps, func() {
		pool.mu.Lock()
		pool.free = append(pool.free, ps)
		pool.mu.Unlock()
	}, nil
}
