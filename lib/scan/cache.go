package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"
)

// caching reports whether any engine's answers are kept in the store.
func (s *Scanner) caching() bool {
	if s.Store == nil || s.CacheTTL <= 0 {
		return false
	}
	for _, e := range s.Engines {
		if e.Cache {
			return true
		}
	}
	return false
}

// bodyHash hashes the body (after the first empty line) and, in case
// there is none, the whole message.
type bodyHash struct {
	body, all hash.Hash
	state     int // 0 in a line, 1 after LF, 2 after LF CR, 3 in the body
}

func newBodyHash() *bodyHash { return &bodyHash{body: sha256.New(), all: sha256.New()} }

func (b *bodyHash) Write(p []byte) (int, error) {
	b.all.Write(p)
	if b.state == 3 {
		return b.body.Write(p)
	}
	for i, c := range p {
		switch {
		case c == '\n' && b.state >= 1:
			b.state = 3
			b.body.Write(p[i+1:])
			return len(p), nil
		case c == '\n':
			b.state = 1
		case c == '\r' && b.state == 1:
			b.state = 2
		default:
			b.state = 0
		}
	}
	return len(p), nil
}

func (b *bodyHash) sum() string {
	if b.state == 3 {
		return "b" + hex.EncodeToString(b.body.Sum(nil))
	}
	return "m" + hex.EncodeToString(b.all.Sum(nil))
}

// cached is an engine's answer as the result cache keeps it: what the
// engine said, not the outcome, which configuration gives it.
type cached struct {
	Infected  bool     `json:"infected,omitempty"`
	Signature string   `json:"sig,omitempty"`
	TooBig    bool     `json:"too_big,omitempty"`
	Spam      bool     `json:"spam,omitempty"`
	Score     float64  `json:"score,omitempty"`
	Threshold float64  `json:"threshold,omitempty"`
	Symbols   []string `json:"symbols,omitempty"`
	Fields    []string `json:"fields,omitempty"` // spamd HEADERS' X-Spam-* or a program's header lines
	Exit      int      `json:"exit,omitempty"`
}

func keyPart(s string) string {
	return strings.NewReplacer("%", "%25", "|", "%7C", ":", "%3A").Replace(strings.ToLower(s))
}

func (s *Scanner) cacheKey(e *Engine, user, sum string) string {
	return "sc:" + e.Name + ":" + keyPart(user) + ":" + sum
}

func (s *Scanner) lookup(ctx context.Context, e *Engine, user, sum string) (*cached, bool) {
	if s.Store == nil || s.CacheTTL <= 0 || !e.Cache {
		return nil, false
	}
	ent, ok, err := s.Store.Get(ctx, s.cacheKey(e, user, sum))
	if err != nil {
		s.Logf("cache: %v", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	var c cached
	if json.Unmarshal(ent.Value, &c) != nil {
		return nil, false
	}
	return &c, true
}

func (s *Scanner) store(ctx context.Context, e *Engine, user, sum string, c *cached) {
	if s.Store == nil || s.CacheTTL <= 0 || !e.Cache || s.DryRun {
		return
	}
	v, _ := json.Marshal(c)
	if err := s.Store.Set(ctx, s.cacheKey(e, user, sum), v, s.CacheTTL); err != nil {
		s.Logf("cache: %v", err)
	}
}
