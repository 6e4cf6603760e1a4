package scan

import (
	"context"
	"mf/lib/clamd"
	"time"
)

func (s *Scanner) clamd(ctx context.Context, e *Engine, m *Msg, sum string) *Result {
	start := time.Now()
	res := &Result{Engine: e}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, "", sum)
	if !ok {
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cl := &clamd.Client{Addrs: e.Addrs, ConnectTimeout: e.ConnectTimeout, Timeout: e.Timeout}
		cr, err := cl.Scan(ctx, r)
		if err != nil {
			return s.fail(res, err)
		}
		c = &cached{Infected: cr.Infected, Signature: cr.Signature, TooBig: cr.TooBig}
		s.store(ctx, e, "", sum, c)
	}
	res.Cached = ok
	switch {
	case c.TooBig:
		return skipped(res, "size")
	case c.Infected:
		res.Status, res.Detail, res.Outcome = "infected", c.Signature, &e.OnVirus
	default:
		res.Status = "clean"
	}
	return res
}
