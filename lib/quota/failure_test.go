package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"mf/lib/state"
)

// failing is a store whose write number failAt (counting from 1) fails,
// as a full disk or a lost server would make it.
type failing struct {
	state.Store
	n, failAt int
}

var errFull = errors.New("no space left on device")

func (f *failing) fail() error {
	f.n++
	if f.n == f.failAt {
		return errFull
	}
	return nil
}

func (f *failing) Add(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	return f.Store.Add(ctx, key, n, ttl)
}

func (f *failing) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := f.fail(); err != nil {
		return false, err
	}
	return f.Store.SetNX(ctx, key, val, ttl)
}

func (f *failing) Lease(ctx context.Context, key, id string, max int, ttl time.Duration) (bool, int, error) {
	if err := f.fail(); err != nil {
		return false, 0, err
	}
	return f.Store.Lease(ctx, key, id, max, ttl)
}

// stored is every live counter and seen-mark in the store, "" for none.
func stored(t *testing.T, st state.Store) string {
	t.Helper()
	var out []string
	for _, p := range []string{"q:", "s:"} {
		es, err := st.Scan(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if v, _ := strconv.ParseInt(string(e.Value), 10, 64); p == "s:" || v != 0 {
				out = append(out, fmt.Sprintf("%s=%s", e.Key, e.Value))
			}
		}
	}
	return strings.Join(out, " ")
}

// A check that fails leaves no count behind, whichever write failed:
// the MTA retries the message, and it must count once then.
func TestFailedCheckLeavesNoCount(t *testing.T) {
	rules := []string{`a key=sender limit=100/1h,1000/1d`, `b key=client+rcpt count=recipients limit=100/1h`, `c key=any count=bytes limit=100000/1h`}
	ctx := context.Background()
	for failAt := 1; ; failAt++ {
		e, _ := engine(t, rules...)
		e.Opt.Concurrency, e.Opt.SlotTTL = 10, time.Minute
		f := &failing{Store: e.St, failAt: failAt}
		e.St = f
		m := msg("Q1", "a@example.org", "r1@example.com", "r2@example.com")
		_, err := e.Check(ctx, m)
		if err == nil {
			if failAt < 5 {
				t.Fatalf("only %d writes", failAt-1)
			}
			break // past the last write
		}
		if !errors.Is(err, errFull) {
			t.Fatalf("write %d: %v", failAt, err)
		}
		if c := stored(t, f.Store); c != "" {
			t.Errorf("write %d failed, and the check left %s", failAt, c)
		}
		// The retry counts the message once.
		if o, err := e.Check(ctx, m); err != nil || o.Verdict.Action.Final() {
			t.Fatalf("retry after write %d failed: %v %v", failAt, o.Verdict, err)
		}
		cs, _ := e.Show(ctx, "")
		for _, c := range cs {
			want := 1.0
			switch c.Rule.Name {
			case "c":
				want = float64(m.Size)
			}
			if c.Count != want {
				t.Errorf("retry after write %d: rule %s key %s counted %.0f, want %.0f", failAt, c.Rule.Name, c.Key, c.Count, want)
			}
		}
	}
}
