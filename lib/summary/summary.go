// Package summary adds mail log events up into a report, in memory bounded
// by Options whatever the length of the logs.
package summary

import (
	"hash/maphash"
	"math"
	"sort"
	"time"
	"unicode/utf8"

	"mf/lib/maillog"
)

// Options bound what a Summary counts and keeps.
type Options struct {
	Since, Until time.Time      // count events in [Since, Until); zero is open
	Loc          *time.Location // days and hours are this zone's
	MaxKeys      int            // distinct keys per table; more go to "(other)"
	MaxMessages  int            // queue ids followed at once; the oldest are let go
	MaxLines     int            // line hashes remembered to skip repeated lines; 0 = no skipping
}

// Defaults are the bounds when Options leaves them zero: at most about
// 100 bytes per followed message and 50 per table key.
var Defaults = Options{MaxKeys: 50000, MaxMessages: 1 << 20}

// msg is what is known about one queued message.
type msg struct {
	recv     time.Time // receipt; zero when the log has none
	client   string
	from     string
	size     int64
	sized    bool
	received bool // a receipt was logged
	again    bool // re-injected by a content filter: not a new message
	deferred bool // counted among deferred messages
}

// qkey names a message: queue ids are unique per machine. The MTA is not
// part of it, so a hand-off from sendmail to Postfix on one machine joins;
// their queue ids have different shapes and do not collide.
type qkey struct {
	host string
	qid  string
}

// qstart is a qmail delivery under way: its outcome names only the
// delivery number.
type qstart struct {
	key  qkey
	rcpt string
}

// Summary accumulates events. Not safe for concurrent use.
type Summary struct {
	o Options

	t     Totals
	first time.Time
	last  time.Time

	cur, old map[qkey]*msg // two generations: a message not seen for a generation is let go
	starts   map[qkey]qstart
	seen     [2]map[uint64]struct{}

	days  map[string]*[5]int64 // received, delivered, deferred, bounced, rejected
	hours [24][5]int64

	rcptDom, sendDom, senders, rcpts, hosts *table
	rejReason, rejClass, deferReason        *table
	bounceReason, held, discarded           *table
	stageAction, stageReason, finalAction   *table
	delays                                  hist
	Lines                                   Lines
}

// Lines counts the input lines by what became of them.
type Lines struct {
	Read      int64 `json:"read"`
	Events    int64 `json:"events"`
	Known     int64 `json:"mail_no_event"`
	Foreign   int64 `json:"other_programs"`
	Unparsed  int64 `json:"unparsed"`
	Repeated  int64 `json:"repeated"`
	Evicted   int64 `json:"messages_let_go"`
	OutOfSpan int64 `json:"outside_period"`
}

// New returns an empty Summary.
func New(o Options) *Summary {
	if o.MaxKeys <= 0 {
		o.MaxKeys = Defaults.MaxKeys
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = Defaults.MaxMessages
	}
	if o.Loc == nil {
		o.Loc = time.Local
	}
	s := &Summary{o: o, cur: map[qkey]*msg{}, old: map[qkey]*msg{}, starts: map[qkey]qstart{}, days: map[string]*[5]int64{}}
	if o.MaxLines > 0 {
		s.seen = [2]map[uint64]struct{}{{}, {}}
	}
	for _, t := range []**table{&s.rcptDom, &s.sendDom, &s.senders, &s.rcpts, &s.hosts, &s.rejReason, &s.rejClass,
		&s.deferReason, &s.bounceReason, &s.held, &s.discarded, &s.stageAction, &s.stageReason, &s.finalAction} {
		*t = newTable(o.MaxKeys)
	}
	return s
}

var seed = maphash.MakeSeed()

// Hash is the line hash Add takes; callers compute it where the line is
// split, which may be another goroutine.
func Hash(line []byte) uint64 { return maphash.Bytes(seed, line) }

// Repeated reports whether a line with hash h was added before, and
// remembers it. Exact copies of a line (an overlapping rotated file, a log
// concatenated twice) are counted once.
func (s *Summary) Repeated(h uint64) bool {
	if s.seen[0] == nil {
		return false
	}
	if _, ok := s.seen[0][h]; ok {
		return true
	}
	if _, ok := s.seen[1][h]; ok {
		return true
	}
	if len(s.seen[0]) >= s.o.MaxLines/2 {
		s.seen[1], s.seen[0] = s.seen[0], make(map[uint64]struct{}, len(s.seen[0]))
	}
	s.seen[0][h] = struct{}{}
	return false
}

func (s *Summary) in(t time.Time) bool {
	if !s.o.Since.IsZero() && t.Before(s.o.Since) {
		return false
	}
	if !s.o.Until.IsZero() && !t.Before(s.o.Until) {
		return false
	}
	return true
}

// get finds or makes the state of a message.
func (s *Summary) get(k qkey) *msg {
	if m, ok := s.cur[k]; ok {
		return m
	}
	m, ok := s.old[k]
	if ok {
		delete(s.old, k)
	} else {
		m = &msg{size: -1}
	}
	if len(s.cur) >= s.o.MaxMessages/2 {
		s.Lines.Evicted += int64(len(s.old))
		s.finishAll(s.old)
		s.old, s.cur = s.cur, make(map[qkey]*msg, len(s.cur))
	}
	s.cur[k] = m
	return m
}

// queued reports whether a message is being followed, without starting to.
func (s *Summary) queued(k qkey) bool {
	_, ok := s.cur[k]
	if !ok {
		_, ok = s.old[k]
	}
	return ok
}

func (s *Summary) drop(k qkey) {
	m, ok := s.cur[k]
	if ok {
		delete(s.cur, k)
	} else if m, ok = s.old[k]; ok {
		delete(s.old, k)
	}
	if ok {
		s.finish(m)
	}
}

// finish counts a message's receipt once all is known about it: whether
// it came back from a content filter is logged after it arrives.
func (s *Summary) finish(m *msg) {
	if !m.received || m.again || !s.in(m.recv) {
		return
	}
	s.t.Received++
	s.day(m.recv)[0]++
	s.hours[m.recv.In(s.o.Loc).Hour()][0]++
	size := max(m.size, 0)
	s.t.BytesReceived += size
	dom := string(maillog.Domain([]byte(m.from)))
	if m.from == "" {
		dom = m.client
	}
	s.sendDom.add(dom).count(size)
	s.senders.add(senderKey(m.from)).count(size)
	if m.client != "" {
		s.hosts.add(m.client).count(size)
	}
}

func senderKey(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

func (s *Summary) day(t time.Time) *[5]int64 {
	k := t.In(s.o.Loc).Format("2006-01-02")
	d := s.days[k]
	if d == nil {
		d = new([5]int64)
		s.days[k] = d
	}
	return d
}

// Add counts one event.
func (s *Summary) Add(ev *maillog.Event) {
	s.Lines.Events++
	if ev.Kind == maillog.Verdict {
		s.verdict(ev)
		return
	}
	k := qkey{string(ev.Host), string(ev.QID)}
	in := s.in(ev.Time)
	if in {
		if s.first.IsZero() || ev.Time.Before(s.first) {
			s.first = ev.Time
		}
		if ev.Time.After(s.last) {
			s.last = ev.Time
		}
	} else {
		s.Lines.OutOfSpan++
	}
	switch ev.Kind {
	case maillog.Received:
		m := s.get(k)
		m.received, m.recv = true, ev.Time
		m.client = string(maillog.ClientHost(ev.Client))
		if ev.From != nil || ev.MTA != maillog.Postfix {
			m.from = string(ev.From)
		}
		if ev.Size >= 0 {
			m.size, m.sized = ev.Size, true
		}
		if ev.Next != nil {
			m.again = true
		}
		return
	case maillog.Queued:
		m := s.get(k)
		if !m.sized {
			m.size, m.sized = ev.Size, true
			m.from = string(ev.From)
		}
		return
	case maillog.Removed:
		s.drop(k)
		return
	case maillog.Start:
		if len(s.starts) >= s.o.MaxMessages { // outcomes lost with a cut log: start afresh
			clear(s.starts)
		}
		s.starts[qkey{string(ev.Host), "#" + string(ev.Ref)}] = qstart{k, string(ev.Addr)}
		return
	}
	if !in {
		return
	}
	switch ev.Kind {
	case maillog.Delivered, maillog.Forwarded, maillog.Deferred, maillog.Bounced:
		s.delivery(ev, k)
	case maillog.Rejected:
		if ev.UnlessQueued && s.queued(k) {
			return
		}
		s.t.Rejected++
		s.day(ev.Time)[4]++
		s.hours[ev.Time.In(s.o.Loc).Hour()][4]++
		s.rejReason.add(trim(ev.Reason)).n++
		s.rejClass.add(trim(ev.Class)).n++
	case maillog.RejectWarning:
		s.t.RejectWarnings++
	case maillog.Held:
		s.t.Held++
		s.held.add(trim(ev.Reason)).n++
	case maillog.Discarded:
		s.t.Discarded++
		s.discarded.add(trim(ev.Reason)).n++
	}
}

func (s *Summary) delivery(ev *maillog.Event, k qkey) {
	addr := string(ev.Addr)
	if ev.MTA == maillog.Qmail { // the outcome names the delivery, its start the message
		sk := qkey{string(ev.Host), "#" + string(ev.Ref)}
		st, ok := s.starts[sk]
		if !ok {
			return
		}
		delete(s.starts, sk) // a retry is a new delivery number
		k, addr = st.key, st.rcpt
	}
	m := s.get(k)
	delay := ev.Delay
	if delay < 0 && !m.recv.IsZero() {
		delay = ev.Time.Sub(m.recv).Seconds()
	}
	n := int64(ev.N)
	dom := string(maillog.Domain([]byte(addr)))
	h := ev.Time.In(s.o.Loc).Hour()
	switch ev.Kind {
	case maillog.Delivered:
		if ev.Next != nil { // handed to a content filter on this machine
			s.t.Filtered += n
			s.get(qkey{k.host, string(ev.Next)}).again = true
			return
		}
		s.t.Delivered += n
		s.day(ev.Time)[1] += n
		s.hours[h][1] += n
		size := max(m.size, 0) * n
		s.t.BytesDelivered += size
		r := s.rcptDom.add(dom)
		r.count(size)
		r.n += n - 1
		if delay >= 0 {
			r.delay(delay)
			s.delays.add(delay)
		}
		s.rcpts.add(addr).count(size)
	case maillog.Forwarded:
		s.t.Forwarded += n
	case maillog.Deferred:
		s.t.Deferrals += n
		if !m.deferred {
			m.deferred = true
			s.t.Deferred++
		}
		s.day(ev.Time)[2] += n
		s.hours[h][2] += n
		r := s.rcptDom.add(dom)
		r.defers += n
		if delay >= 0 {
			r.max = math.Max(r.max, delay)
		}
		s.deferReason.add(trim(ev.Reason)).n += n
	case maillog.Bounced:
		s.t.Bounced += n
		s.day(ev.Time)[3] += n
		s.hours[h][3] += n
		s.bounceReason.add(trim(ev.Reason)).n += n
	}
}

func (s *Summary) verdict(ev *maillog.Event) {
	if !s.in(ev.Time) {
		s.Lines.OutOfSpan++
		return
	}
	r := ev.Record
	s.t.Decisions++
	s.finalAction.add(r.Phase+"\x00"+r.Action).n++
	for _, st := range r.Stages {
		s.stageAction.add(st.Name + "\x00" + st.Action).count(0)
		why := st.Reply
		if st.Error != "" {
			why = "error: " + st.Error
		}
		if why != "" {
			s.stageReason.add(st.Name+"\x00"+trimString(why)).n++
		}
	}
}

const reasonWidth = 100

func trim(b []byte) string { return trimString(string(b)) }

func trimString(s string) string {
	if len(s) > reasonWidth {
		i := reasonWidth
		for i > 0 && !utf8.RuneStart(s[i]) { // not inside a character
			i--
		}
		s = s[:i]
	}
	return s
}

// Finish lets go of every message still followed, counting their
// receipts; call it once, after the last Add.
func (s *Summary) Finish() {
	s.finishAll(s.old, s.cur)
	s.old, s.cur = map[qkey]*msg{}, map[qkey]*msg{}
}

// finishAll finishes messages in order of receipt, so that a table that
// fills up fills the same way on every run.
func (s *Summary) finishAll(gs ...map[qkey]*msg) {
	var ms []*msg
	for _, g := range gs {
		for _, m := range g {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].recv.Equal(ms[j].recv) {
			return ms[i].recv.Before(ms[j].recv)
		}
		return ms[i].from+ms[i].client < ms[j].from+ms[j].client
	})
	for _, m := range ms {
		s.finish(m)
	}
}
