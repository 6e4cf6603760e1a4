package summary

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"mf/lib/maillog"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func ev(kind maillog.Kind, qid string, sec int, f func(*maillog.Event)) *maillog.Event {
	e := &maillog.Event{Kind: kind, MTA: maillog.Postfix, Host: []byte("mx"), QID: []byte(qid), Time: t0.Add(time.Duration(sec) * time.Second), Size: -1, Delay: -1, N: 1}
	if f != nil {
		f(e)
	}
	return e
}

func total(t *testing.T, s *Summary, name string) int64 {
	t.Helper()
	s.Finish()
	for _, kv := range s.Report(0).Totals.list() {
		if kv.k == name {
			return kv.v
		}
	}
	t.Fatalf("no total %s", name)
	return 0
}

// A content filter's re-injection is one message, whichever of the two
// lines that tie them comes first.
func TestReinjection(t *testing.T) {
	for _, order := range []string{"receipt first", "hand-off first"} {
		s := New(Options{Loc: time.UTC})
		recvA := ev(maillog.Received, "A", 0, func(e *maillog.Event) { e.Client = []byte("mail.example.org[192.0.2.7]") })
		queueA := ev(maillog.Queued, "A", 0, func(e *maillog.Event) { e.Size, e.From = 1000, []byte("a@example.org") })
		handoff := ev(maillog.Delivered, "A", 1, func(e *maillog.Event) { e.Addr, e.Next = []byte("b@example.com"), []byte("B") })
		recvB := ev(maillog.Received, "B", 1, func(e *maillog.Event) { e.Client = []byte("localhost[127.0.0.1]") })
		queueB := ev(maillog.Queued, "B", 1, func(e *maillog.Event) { e.Size, e.From = 1200, []byte("a@example.org") })
		sent := ev(maillog.Delivered, "B", 2, func(e *maillog.Event) { e.Addr = []byte("b@example.com") })
		evs := []*maillog.Event{recvA, queueA, recvB, queueB, handoff, sent}
		if order == "hand-off first" {
			evs = []*maillog.Event{recvA, queueA, handoff, recvB, queueB, sent}
		}
		for _, e := range evs {
			s.Add(e)
		}
		s.Finish()
		r := s.Report(0).Totals
		if r.Received != 1 || r.Delivered != 1 || r.Filtered != 1 || r.BytesReceived != 1000 || r.BytesDelivered != 1200 {
			t.Errorf("%s: %+v", order, r)
		}
	}
}

func TestTableBound(t *testing.T) {
	s := New(Options{Loc: time.UTC, MaxKeys: 10})
	for i := range 100 {
		s.Add(ev(maillog.Rejected, "", i, func(e *maillog.Event) {
			e.Reason = fmt.Appendf(nil, "reason %d", i)
			e.Class = []byte("x")
		}))
	}
	s.Finish()
	r := s.Report(0)
	tb, _ := r.Table("reject-reasons")
	if len(tb.Rows) != 11 || tb.Rows[0][1] != other || tb.Rows[0][0] != int64(90) {
		t.Errorf("rows %d, first %v", len(tb.Rows), tb.Rows[0])
	}
	if r.Totals.Rejected != 100 {
		t.Errorf("rejected %d", r.Totals.Rejected)
	}
}

// Messages never removed (sendmail logs no removal) are let go in
// generations; their receipts are still counted, once.
func TestMessageBound(t *testing.T) {
	s := New(Options{Loc: time.UTC, MaxMessages: 100})
	for i := range 1000 {
		s.Add(ev(maillog.Received, fmt.Sprint("Q", i), i, func(e *maillog.Event) { e.Size = 10 }))
	}
	if n := len(s.cur) + len(s.old); n > 100 {
		t.Errorf("%d messages followed, bound 100", n)
	}
	if got := total(t, s, "received"); got != 1000 {
		t.Errorf("received %d", got)
	}
	if s.Lines.Evicted == 0 {
		t.Error("nothing let go")
	}
}

func TestRepeated(t *testing.T) {
	s := New(Options{MaxLines: 4})
	for i := range 10 {
		if s.Repeated(uint64(i)) {
			t.Fatalf("%d new, called repeated", i)
		}
	}
	if !s.Repeated(9) || !s.Repeated(8) {
		t.Error("recent lines not remembered")
	}
	if s.seen.sets[0].n+s.seen.sets[1].n > 4 {
		t.Error("more lines remembered than the bound")
	}
}

func TestSince(t *testing.T) {
	s := New(Options{Loc: time.UTC, Since: t0.Add(time.Hour)})
	s.Add(ev(maillog.Received, "A", 0, nil)) // before: not counted
	s.Add(ev(maillog.Queued, "A", 0, func(e *maillog.Event) { e.Size = 500 }))
	s.Add(ev(maillog.Delivered, "A", 3700, func(e *maillog.Event) { e.Addr = []byte("x@y") }))
	s.Finish()
	r := s.Report(0).Totals
	if r.Received != 0 || r.Delivered != 1 || r.BytesDelivered != 500 {
		t.Errorf("%+v", r)
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 100; i++ {
		h.add(float64(i))
	}
	for q, want := range map[float64]float64{.5: 50, .9: 90, .99: 99} {
		if got := h.quantile(q); got < want*0.97 || got > want*1.03 {
			t.Errorf("q%v = %v, want %v within 3%%", q, got, want)
		}
	}
	if h.quantile(1) != 100 {
		t.Errorf("max %v", h.quantile(1))
	}
}

// messageCost is what mf-stat(1) says one followed message costs at
// most, in bytes of heap: the test measures it.
const messageCost = 300

// A followed message costs at most messageCost bytes: sendmail messages
// with a receipt and a deferral, never removed, up to the bound.
func TestMessageCost(t *testing.T) {
	const n = 1 << 16
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	s := New(Options{Loc: time.UTC, MaxMessages: 2 * n, MaxKeys: 10})
	before := heap()
	for i := range n {
		q := fmt.Sprintf("6BM%06X%05d", i, i%100000)
		s.Add(ev(maillog.Received, q, i, func(e *maillog.Event) {
			e.MTA, e.Size = maillog.Sendmail, 3000
			e.From = fmt.Appendf(nil, "sender%d@example.net", i)
			e.Client = fmt.Appendf(nil, "c%d.example.net [198.51.100.%d]", i, i%250)
		}))
		s.Add(ev(maillog.Deferred, q, i, func(e *maillog.Event) {
			e.MTA, e.Addr, e.Reason = maillog.Sendmail, fmt.Appendf(nil, "rcpt%d@d%d.example.com", i, i%700), []byte("Deferred: Connection timed out")
		}))
	}
	after := heap()
	if got := len(s.cur) + len(s.old); got != n {
		t.Fatalf("%d messages followed, want %d", got, n)
	}
	per := (after - before) / n
	t.Logf("%d bytes per followed message", per)
	if per > messageCost {
		t.Errorf("%d bytes per followed message, mf-stat(1) says at most about %d", per, messageCost)
	}
	runtime.KeepAlive(s)
}

// A message restored from the offsets file (named by strings) is found
// by the lines of the next run (named by bytes).
func TestKeyID(t *testing.T) {
	if (qkey{"mx", "4ABC123"}).id() != keyID("mx", []byte("4ABC123")) {
		t.Error("string and byte keys differ")
	}
	if keyID("mx", []byte("4ABC123")) == keyID("mx2", []byte("4ABC123")) || keyID("mx", []byte("1")) == startID("mx", []byte("1")) {
		t.Error("different names, one id")
	}
}

// The best n rows kept while reading are the first n of all the rows
// sorted, ties by key included.
func TestTopIsSortPrefix(t *testing.T) {
	tb := newTable(1000)
	for i := range 500 {
		r := tb.add(fmt.Sprintf("k%03d", (i*37)%500))
		r.n, r.bytes = int64(i%7), int64(i%11)
	}
	for _, by := range []func(*row) float64{
		func(r *row) float64 { return float64(r.n) },
		func(r *row) float64 { return float64(r.bytes) },
	} {
		all := tb.top(0, by)
		for _, n := range []int{1, 2, 10, 499, 500, 501} {
			got := tb.top(n, by)
			want := all[:min(n, len(all))]
			if len(got) != len(want) {
				t.Fatalf("top(%d): %d rows, want %d", n, len(got), len(want))
			}
			for i := range got {
				if got[i].k != want[i].k || got[i].row != want[i].row {
					t.Fatalf("top(%d)[%d] = %s, want %s", n, i, got[i].k, want[i].k)
				}
			}
		}
	}
}

// A full table still finds every key it holds, from a string or bytes.
func TestFullTableFindsItsKeys(t *testing.T) {
	tb := newTable(1000)
	rows := map[string]*row{}
	for i := range 1000 {
		k := fmt.Sprintf("sender%d@example.org", i)
		rows[k] = tb.add(k)
	}
	o := tb.add("one too many")
	if !tb.full || o != tb.lookup(other) {
		t.Fatal("a key past the bound is not counted as (other)")
	}
	for i := range 5000 {
		if r := tb.addKey(fmt.Appendf(nil, "new%d", i)); r != o {
			t.Fatalf("new key %d: not (other)", i)
		}
	}
	for k, r := range rows {
		if tb.add(k) != r || tb.addKey([]byte(k)) != r {
			t.Fatalf("%s: lost once the table is full", k)
		}
	}
	if tb.add(other) != o {
		t.Fatal("(other) itself")
	}
}

// Key, made from the bytes of an event, is the id Add gives its message.
func TestKey(t *testing.T) {
	for _, e := range []*maillog.Event{
		ev(maillog.Received, "4BxYz1", 0, nil),
		ev(maillog.Queued, "", 0, func(e *maillog.Event) { e.Host = nil }),
		ev(maillog.Delivered, "12345", 0, func(e *maillog.Event) { e.Host = []byte("mx2.example.org") }),
	} {
		if Key(e) != keyID(string(e.Host), e.QID) {
			t.Errorf("%s %s: Key is not keyID", e.Host, e.QID)
		}
	}
}

// lessConcat orders as the concatenations do.
func TestLessConcat(t *testing.T) {
	ss := []string{"", "a", "b", "ab", "ba", "aa", "abc", "\xff", "a\x00"}
	for _, a1 := range ss {
		for _, a2 := range ss {
			for _, b1 := range ss {
				for _, b2 := range ss {
					if lessConcat(a1, a2, b1, b2) != (a1+a2 < b1+b2) {
						t.Fatalf("lessConcat(%q, %q, %q, %q) = %v", a1, a2, b1, b2, !(a1+a2 < b1+b2))
					}
				}
			}
		}
	}
}
