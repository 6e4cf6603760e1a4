package scan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mf/lib/scan/outcome"
	"mf/lib/spamd"
	"mf/lib/stream"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sourcegraph/conc"
)

// users are the spamd users of a message: one per distinct recipient
// (as spamc -u would be run once for each), or the one configured.
func users(e *Engine, env *stream.Envelope) []string {
	switch e.User {
	case "rcpt", "local":
		seen := map[string]bool{}
		var out []string
		for _, r := range env.CurrentRcpts() {
			u := strings.ToLower(r)
			if e.User == "local" {
				if i := strings.LastIndexByte(u, '@'); i >= 0 {
					u = u[:i]
				}
			}
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			out = append(out, u)
		}
		if len(out) == 0 {
			return []string{""}
		}
		return out
	}
	return []string{e.User}
}

func (s *Scanner) spamd(ctx context.Context, e *Engine, m *Msg, sum string) []*Result {
	us := users(e, m.Env)
	out := make([]*Result, len(us))
	var wg conc.WaitGroup // a panic reaches Wait (see Scan)
	for i, u := range us {
		wg.Go(func() { out[i] = s.spamdUser(ctx, e, m, sum, u) })
	}
	wg.Wait()
	var top *Result
	var topScore float64
	for _, res := range out {
		if res.Err == nil && res.Skipped == "" && res.Status != "busy" {
			if sc := res.score(); top == nil || sc > topScore {
				top, topScore = res, sc
			}
		}
	}
	// The X-Spam-* fields say what the highest score was, once.
	for _, r := range out {
		if r != top {
			r.Headers = nil
		}
	}
	return out
}

func (r *Result) score() float64 {
	f, _ := strconv.ParseFloat(strings.Fields(r.Detail + " 0")[0], 64)
	return f
}

func (s *Scanner) spamdUser(ctx context.Context, e *Engine, m *Msg, sum, user string) *Result {
	start := time.Now()
	res := &Result{Engine: e, User: user}
	defer func() { res.Dur = time.Since(start) }()
	if m.Size > e.MaxSize {
		return skipped(res, "size")
	}
	c, ok := s.lookup(ctx, e, user, sum)
	if !ok {
		if e.Concurrency > 0 && s.Store != nil && !s.DryRun {
			release, err := s.slot(ctx, e, user)
			if err != nil {
				return s.fail(res, err)
			}
			if release == nil {
				res.Status = "busy"
				res.Detail = fmt.Sprintf("%d scans already running", e.Concurrency)
				res.Outcome = &outcome.Outcome{Action: outcome.Tempfail}
				return res
			}
			defer release()
		}
		r, err := m.Open()
		if err != nil {
			return s.fail(res, err)
		}
		cl := &spamd.Client{Addrs: e.Addrs, ConnectTimeout: e.ConnectTimeout, Timeout: e.Timeout}
		sr, err := cl.Scan(ctx, e.Command, user, r, m.Size)
		if err != nil {
			return s.fail(res, err)
		}
		c = &cached{Spam: sr.Spam, Score: sr.Score, Threshold: sr.Threshold, Symbols: sr.Symbols}
		if e.Command == spamd.Headers {
			c.Fields = spamFields(sr.Body)
		}
		if e.Command == spamd.Report && len(sr.Body) > 0 {
			rep := strings.Join(strings.Fields(strings.ToValidUTF8(string(sr.Body), "?")), " ")
			if len(rep) > 4000 {
				rep = rep[:4000]
			}
			s.Logf("spamd report for %q: %s", user, clean(rep))
		}
		s.store(ctx, e, user, sum, c)
	}
	res.Cached = ok
	tagged := c.Spam
	if e.TagAt != nil {
		tagged = c.Score >= *e.TagAt
	}
	res.Status = "ham"
	if tagged {
		res.Status = "spam"
	}
	res.Detail = fmt.Sprintf("%.1f/%.1f", c.Score, c.Threshold)
	switch {
	case e.RejectAt != nil && c.Score >= *e.RejectAt:
		res.Outcome = &e.SpamReject
	case e.QuarantineAt != nil && c.Score >= *e.QuarantineAt:
		res.Outcome = &e.SpamHold
	case tagged:
		res.Outcome = &e.SpamTag
	}
	if e.SpamHeaders {
		res.Headers = spamHeaders(c, tagged)
	}
	return res
}

// slot takes one of the engine's concurrency slots of user, waiting up
// to SlotWait; release is nil when none came free.
func (s *Scanner) slot(ctx context.Context, e *Engine, user string) (release func(), err error) {
	s.once.Do(func() {
		var b [8]byte
		rand.Read(b[:])
		s.lockID = strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	})
	key := "ss:" + e.Name + ":" + keyPart(user)
	id := s.lockID
	ttl := e.ConnectTimeout*time.Duration(len(e.Addrs)) + e.Timeout + 10*time.Second
	deadline := time.Now().Add(e.SlotWait)
	wait := 20 * time.Millisecond
	for {
		ok, _, err := s.Store.Lease(ctx, key, id, e.Concurrency, ttl)
		if err != nil {
			return nil, fmt.Errorf("slot: %w", err)
		}
		if ok {
			return func() {
				if err := s.Store.Release(context.WithoutCancel(ctx), key, id); err != nil {
					s.Logf("slot release: %v", err)
				}
			}, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// spamHeaders are the fields SpamAssassin itself would add, which
// administrators filter on.
func spamHeaders(c *cached, tagged bool) []string {
	if len(c.Fields) > 0 {
		return c.Fields
	}
	flag, yes := "NO", "No"
	if tagged {
		flag, yes = "YES", "Yes"
	}
	status := fmt.Sprintf("X-Spam-Status: %s, score=%.1f required=%.1f", yes, c.Score, c.Threshold)
	if len(c.Symbols) > 0 {
		status += " tests=" + clean(strings.Join(c.Symbols, ","))
	}
	h := []string{"X-Spam-Flag: " + flag, fmt.Sprintf("X-Spam-Score: %.1f", c.Score), status}
	if n := int(c.Score); n > 0 {
		h = append(h, "X-Spam-Level: "+strings.Repeat("*", min(n, 50)))
	}
	return h
}

// spamFields picks the X-Spam-* fields out of a HEADERS reply, each
// unfolded onto one line.
func spamFields(block []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n") {
		if l == "" {
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && len(out) > 0 {
			if out[len(out)-1] != "" {
				out[len(out)-1] += " " + strings.TrimSpace(l)
			}
			continue
		}
		if strings.HasPrefix(strings.ToLower(l), "x-spam-") {
			out = append(out, clean(l))
		} else {
			out = append(out, "")
		}
	}
	var fields []string
	for _, f := range out {
		if f != "" {
			fields = append(fields, f)
		}
	}
	return fields
}
