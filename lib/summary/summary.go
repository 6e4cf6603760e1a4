// Package summary adds mail log events up into a report, in memory bounded
// by Options whatever the length of the logs.
package summary

import (
	"hash/maphash"
	"math"
	"sort"
	"strings"
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
	// Window is how far apart in time the lines that join two messages
	// may be logged: a content filter's copy and its hand-off, a qmail
	// forward and its copy. Log order within a moment is not the order
	// of events, so a receipt is counted only once the window has passed.
	Window time.Duration
	// MaxAge lets go of a message, in cron mode, once nothing has been
	// logged about it for this long (longer than any queue lifetime).
	MaxAge time.Duration
}

// Defaults are the bounds when Options leaves them zero.
var Defaults = Options{MaxKeys: 20000, MaxMessages: 1 << 16, Window: 5 * time.Minute, MaxAge: 8 * 24 * time.Hour}

// msg is what is known about one queued message. Times are Unix
// nanoseconds: a followed message costs about 150 bytes.
type msg struct {
	id       uint64 // key's hash: maps are keyed by it, no string made per line
	key      qkey
	recv     int64 // receipt; 0 when the log has none
	seen     int64 // the clock (latest time logged) at the last line about it
	client   string
	from     string
	size     int64
	sized    bool
	received bool // a receipt was logged
	again    bool // a copy of another message (content filter, forward): not a new one
	deferred bool // counted among deferred messages
	decided  bool // its receipt was counted, or found to be a copy
	removed  bool // left the queue; kept until decided
	waiting  bool // in the queue of receipts to decide
}

// qkey names a message: queue ids are unique per machine. The MTA is not
// part of it, so a hand-off from sendmail to Postfix on one machine joins;
// their queue ids have different shapes and do not collide.
type qkey struct {
	host string
	qid  string
}

var idSeed = maphash.MakeSeed()

// keyID hashes a host (interned) and a queue id; 64 bits, so two
// messages of one log do not collide.
func keyID(host string, qid []byte) uint64 {
	return maphash.String(idSeed, host)*0x9e3779b97f4a7c15 ^ maphash.Bytes(idSeed, qid)
}

// Key is the name AddKeyed takes of an event's message; like Hash it
// can be computed where the line is parsed.
func Key(ev *maillog.Event) uint64 {
	return maphash.Bytes(idSeed, ev.Host)*0x9e3779b97f4a7c15 ^ maphash.Bytes(idSeed, ev.QID) // keyID, from bytes
}

func (k qkey) id() uint64 {
	return maphash.String(idSeed, k.host)*0x9e3779b97f4a7c15 ^ maphash.String(idSeed, k.qid)
}

// startID names qmail delivery ref on host.
func startID(host string, ref []byte) uint64 {
	return keyID(host, ref) ^ 0x5bd1e995
}

// qstart is a qmail delivery under way: its outcome names only the
// delivery number.
type qstart struct {
	ref  string
	key  qkey
	rcpt string
	t    int64
}

// handoff is a delivery to a relay on this machine that named the
// queue id of its copy; until the copy shows up or the window passes it
// is neither a filter hand-off nor a delivery.
type handoff struct {
	id    uint64 // of the copy
	copy  qkey
	t     int64
	n     int64
	size  int64
	addr  string
	delay float64
	done  bool
}

// forward is a qmail forward whose copy has not been seen yet: the
// copy is the next message received on the host from the same sender.
type forward struct {
	host, from string
	t          int64
	done       bool
}

// problem is one kind of trouble a program reported.
type problem struct {
	n           int64
	first, last int64
	sample      string
}

// Summary accumulates events. Not safe for concurrent use.
type Summary struct {
	o Options

	t     Totals
	first time.Time
	last  time.Time
	clock int64 // the latest time logged so far

	cur, old map[uint64]*msg // two generations: a message not seen for a generation is let go
	starts   map[uint64]qstart
	handoffs map[uint64]*handoff
	waiting  []*msg // receipts to decide, in order of logging
	pending  []*handoff
	forwards []*forward
	hosts    map[string]string // interned host names
	lastHost string            // the host of the last event: most lines are one machine's
	seen     *Seen

	days map[string]*[6]int64 // received, delivered, deferrals, bounced, rejected, tempfailed
	// the day last counted in, [dayStart, dayEnd)
	dayStart, dayEnd int64
	dayRow           *[6]int64
	hours            [24][6]int64

	rcptDom, sendDom, senders, rcpts, sendHosts  *table
	rejReason, rejClass, tempReason, deferReason *table
	refusedClients, refusedSenders               *table
	bounceReason, held, discarded                *table
	stageAction, stageReason, finalAction        *table
	problems                                     map[string]*problem
	delays                                       hist
	Lines                                        Lines
}

// Lines counts the input lines by what became of them.
type Lines struct {
	Read   int64 `json:"read"`
	Events int64 `json:"events"`
	Known  int64 `json:"mail_no_event"`
	// Unrecognized are lines of mail programs no parser understood
	// (written to --unparsed with the unparsed ones).
	Unrecognized int64 `json:"mail_not_understood"`
	Foreign      int64 `json:"other_programs"`
	Unparsed     int64 `json:"unparsed"`
	Repeated     int64 `json:"repeated"`
	Evicted      int64 `json:"messages_let_go"`
	Expired      int64 `json:"messages_expired"` // nothing logged about them for MaxAge
	OutOfSpan    int64 `json:"outside_period"`
	Unjoined     int64 `json:"outcomes_of_unknown_deliveries"` // qmail: the delivery's start was not in the logs
}

// New returns an empty Summary.
func New(o Options) *Summary {
	if o.MaxKeys <= 0 {
		o.MaxKeys = Defaults.MaxKeys
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = Defaults.MaxMessages
	}
	if o.Window <= 0 {
		o.Window = Defaults.Window
	}
	if o.MaxAge <= 0 {
		o.MaxAge = Defaults.MaxAge
	}
	if o.Loc == nil {
		o.Loc = time.Local
	}
	s := &Summary{o: o, cur: map[uint64]*msg{}, old: map[uint64]*msg{}, starts: map[uint64]qstart{},
		handoffs: map[uint64]*handoff{}, hosts: map[string]string{}, days: map[string]*[6]int64{}, problems: map[string]*problem{}}
	if o.MaxLines > 0 {
		s.seen = &Seen{max: o.MaxLines, sets: [2]*hashSet{newHashSet(o.MaxLines / 2), newHashSet(o.MaxLines / 2)}}
	}
	for _, t := range []**table{&s.rcptDom, &s.sendDom, &s.senders, &s.rcpts, &s.sendHosts, &s.rejReason, &s.rejClass,
		&s.tempReason, &s.deferReason, &s.refusedClients, &s.refusedSenders, &s.bounceReason, &s.held, &s.discarded,
		&s.stageAction, &s.stageReason, &s.finalAction} {
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
func (s *Summary) Repeated(h uint64) bool { return s.Seen().Repeated(h) }

// Seen is the memory of the line hashes Repeated asks: nil when
// Options.MaxLines is 0. It shares nothing with the rest of the Summary,
// so one goroutine may ask it while another calls Add.
func (s *Summary) Seen() *Seen { return s.seen }

// Seen remembers the hashes of the last Options.MaxLines lines (at
// least half as many), in two generations. Not safe for concurrent use.
type Seen struct {
	max  int
	sets [2]*hashSet // the current generation first
}

// Repeated reports whether a line with hash h was asked about before,
// and remembers it; a nil Seen remembers nothing.
func (s *Seen) Repeated(h uint64) bool {
	if s == nil {
		return false
	}
	if s.sets[0].has(h) || s.sets[1].has(h) {
		return true
	}
	if s.sets[0].n >= s.max/2 {
		s.sets[1], s.sets[0] = s.sets[0], s.sets[1]
		s.sets[0].reset()
	}
	s.sets[0].add(h)
	return false
}

// hashSet is a set of line hashes: open addressing in one array, at most
// half full, 16 bytes a hash or less; no pointers for the collector to follow.
type hashSet struct {
	slots []uint64
	n     int
}

func newHashSet(n int) *hashSet {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return &hashSet{slots: make([]uint64, size)}
}

// nonzero keeps 0 for an empty slot.
func nonzero(h uint64) uint64 {
	if h == 0 {
		return 0x9e3779b97f4a7c15
	}
	return h
}

func (t *hashSet) has(h uint64) bool {
	if t.n == 0 { // an old generation not yet filled: no look-up in megabytes
		return false
	}
	h = nonzero(h)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (t *hashSet) add(h uint64) {
	h = nonzero(h)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 && t.slots[i] != h {
		i = (i + 1) & mask
	}
	if t.slots[i] == 0 {
		t.slots[i] = h
		t.n++
	}
}

func (t *hashSet) reset() {
	clear(t.slots)
	t.n = 0
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

func (s *Summary) host(h []byte) string {
	if string(h) == s.lastHost {
		return s.lastHost
	}
	v, ok := s.hosts[string(h)]
	if !ok {
		v = string(h)
		if len(s.hosts) < 1024 {
			s.hosts[v] = v
		}
	}
	s.lastHost = v
	return v
}

// lookup finds a followed message.
func (s *Summary) lookup(k uint64) (*msg, bool) {
	m, ok := s.cur[k]
	if !ok {
		m, ok = s.old[k]
	}
	return m, ok
}

// expired: nothing was logged about m while the log went on for MaxAge.
// Only the end of a run in cron mode lets such messages go (Keep); within
// a run the generations bound memory, and a log out of time order loses
// no join.
func (s *Summary) expired(m *msg) bool { return m.seen < s.clock-int64(s.o.MaxAge) }

func (s *Summary) expire(m *msg) {
	s.forget(m.id)
	s.decide(m)
	s.Lines.Expired++
}

// get finds or makes the state of a message: k is its id, host and qid
// its name, made a string only for a new message.
func (s *Summary) get(k uint64, host string, qid []byte) *msg {
	if m, ok := s.cur[k]; ok {
		return m
	}
	m, ok := s.old[k]
	if !ok {
		return s.newMsg(k, host, qid)
	}
	delete(s.old, k)
	s.keep(m)
	return m
}

// newMsg is get of a message not followed yet.
func (s *Summary) newMsg(k uint64, host string, qid []byte) *msg {
	m := &msg{id: k, key: qkey{host, string(qid)}, size: -1}
	s.keep(m)
	return m
}

// keep puts m in the current generation; a full one retires the old.
func (s *Summary) keep(m *msg) {
	if len(s.cur) >= s.o.MaxMessages/2 {
		s.Lines.Evicted += int64(len(s.old))
		s.decideAll(s.old)
		s.old, s.cur = s.cur, make(map[uint64]*msg, len(s.cur))
	}
	s.cur[m.id] = m
}

func (s *Summary) forget(k uint64) {
	delete(s.cur, k)
	delete(s.old, k)
}

// decide counts a message's receipt, unless it is a copy of another.
func (s *Summary) decide(m *msg) {
	if m.decided {
		return
	}
	m.decided = true
	if m.removed {
		s.forget(m.id)
	}
	if !m.received || m.again {
		return
	}
	recv := time.Unix(0, m.recv)
	if !s.in(recv) {
		return
	}
	s.t.Received++
	s.day(recv)[0]++
	s.hours[recv.In(s.o.Loc).Hour()][0]++
	size := max(m.size, 0)
	s.t.BytesReceived += size
	dom := domainOf(m.from)
	if m.from == "" {
		dom = m.client
	}
	s.sendDom.add(dom).count(size)
	s.senders.add(senderKey(m.from)).count(size)
	if m.client != "" {
		s.sendHosts.add(m.client).count(size)
	}
}

// domainOf is the domain of an address, without copying it.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// refusedSender is refusedSenders.add(senderKey(trim(from))), without
// making a string of a sender already in the table.
func (s *Summary) refusedSender(from []byte) *row {
	if f := trimBytes(from); len(f) > 0 {
		return s.refusedSenders.addKey(f)
	}
	return s.refusedSenders.add("<>")
}

func senderKey(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

func (s *Summary) day(t time.Time) *[6]int64 {
	// The last day asked for is asked for again and again: keep it
	// without formatting its name.
	if n := t.UnixNano(); n >= s.dayStart && n < s.dayEnd {
		return s.dayRow
	}
	lt := t.In(s.o.Loc)
	y, m, dd := lt.Date()
	start := time.Date(y, m, dd, 0, 0, 0, 0, s.o.Loc)
	k := start.Format("2006-01-02")
	d := s.days[k]
	if d == nil {
		d = new([6]int64)
		s.days[k] = d
	}
	s.dayStart, s.dayEnd, s.dayRow = start.UnixNano(), start.AddDate(0, 0, 1).UnixNano(), d
	return d
}

// tick settles what the window has closed on by t, the time of the
// line being read: receipts no hand-off claimed are new messages,
// hand-offs whose copy never came are deliveries. The queues are in the
// order of logging, and a log out of time order (files concatenated in
// the wrong order) only holds them until time catches up, or the end.
func (s *Summary) tick(t int64) {
	if t > s.clock {
		s.clock = t
	}
	w := int64(s.o.Window)
	i := 0
	for ; i < len(s.waiting) && s.waiting[i].recv+w < t; i++ {
		s.waiting[i].waiting = false
		s.decide(s.waiting[i])
	}
	s.waiting = shift(s.waiting, i)
	i = 0
	for ; i < len(s.pending) && s.pending[i].t+w < t; i++ {
		s.settle(s.pending[i])
	}
	s.pending = shift(s.pending, i)
	i = 0
	for i < len(s.forwards) && s.forwards[i].t+w < t {
		i++
	}
	s.forwards = shift(s.forwards, i)
}

// shift drops the first i elements, reusing the array once half is dead.
func shift[T any](q []T, i int) []T {
	if i == 0 {
		return q
	}
	if i > cap(q)/2 {
		n := copy(q, q[i:])
		clear(q[n:])
		return q[:n]
	}
	clear(q[:i])
	return q[i:]
}

// settle counts a hand-off whose copy never appeared as a delivery.
func (s *Summary) settle(h *handoff) {
	if h.done {
		return
	}
	h.done = true
	delete(s.handoffs, h.id)
	s.delivered(time.Unix(0, h.t), h.n, h.size, []byte(h.addr), h.delay)
}

// copied marks m, just received or queued, as the copy of a hand-off
// to a content filter, if one named it.
func (s *Summary) copied(k uint64, m *msg) {
	h, ok := s.handoffs[k]
	if !ok {
		return
	}
	h.done = true
	delete(s.handoffs, k)
	s.t.Filtered += h.n
	m.again = true
}

// Add counts one event.
func (s *Summary) Add(ev *maillog.Event) { s.AddKeyed(ev, Key(ev)) }

// AddKeyed is Add, with k = Key(ev) computed beforehand.
func (s *Summary) AddKeyed(ev *maillog.Event, k uint64) {
	s.Lines.Events++
	if ev.Kind == maillog.Verdict {
		s.verdict(ev)
		return
	}
	now := ev.Time.UnixNano()
	s.tick(now)
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
	if ev.Kind == maillog.Problem {
		if in {
			s.problem(ev)
		}
		return
	}
	host := s.host(ev.Host)
	switch ev.Kind {
	case maillog.Received:
		m, ok := s.lookup(k)
		if ok && m.removed {
			// The same queue id again after its removal (a log given
			// twice, with --keep-repeated): another message.
			s.decide(m)
			s.forget(k)
			ok = false
		}
		if ok {
			m = s.get(k, host, ev.QID)
		} else { // get, without looking again for what is not there
			m = s.newMsg(k, host, ev.QID)
		}
		m.seen = s.clock
		m.received, m.recv = true, now
		m.client = string(maillog.ClientHost(ev.Client))
		if ev.From != nil || ev.MTA != maillog.Postfix {
			m.from = string(ev.From)
		}
		if ev.Size >= 0 {
			m.size, m.sized = ev.Size, true
		}
		if ev.Next != nil { // Postfix's orig_queue_id: a filter's copy
			m.again = true
		}
		s.copied(k, m)
		if ev.MTA == maillog.Qmail {
			s.forwardCopy(m)
		}
		if !m.waiting && !m.decided {
			m.waiting = true
			s.waiting = append(s.waiting, m)
		}
		return
	case maillog.Queued:
		m := s.get(k, host, ev.QID)
		m.seen = s.clock
		if !m.sized {
			m.size, m.sized = ev.Size, true
			m.from = string(ev.From)
		}
		s.copied(k, m)
		return
	case maillog.Removed:
		if m, ok := s.lookup(k); ok {
			if m.decided || !m.received {
				s.forget(k)
				s.decide(m)
			} else {
				m.removed = true
			}
		}
		return
	case maillog.Start:
		if len(s.starts) >= s.o.MaxMessages { // outcomes lost with a cut log: start afresh
			clear(s.starts)
		}
		s.starts[startID(host, ev.Ref)] = qstart{string(ev.Ref), qkey{host, string(ev.QID)}, string(ev.Addr), now}
		return
	}
	if !in {
		return
	}
	switch ev.Kind {
	case maillog.Delivered, maillog.Forwarded, maillog.Deferred, maillog.Bounced:
		s.delivery(ev, k, host)
	case maillog.Rejected, maillog.Tempfailed:
		if ev.UnlessQueued {
			if _, ok := s.lookup(k); ok {
				return
			}
		}
		d, h := s.day(ev.Time), &s.hours[ev.Time.In(s.o.Loc).Hour()]
		if ev.Kind == maillog.Rejected {
			s.t.Rejected++
			d[4]++
			h[4]++
			s.rejReason.addBytes(ev.Reason).n++
		} else {
			s.t.Tempfailed++
			d[5]++
			h[5]++
			s.tempReason.addBytes(ev.Reason).n++
		}
		s.rejClass.addBytes(ev.Class).refused(ev.Kind == maillog.Rejected)
		if c := maillog.ClientHost(ev.Client); len(c) > 0 {
			s.refusedClients.addBytes(c).refused(ev.Kind == maillog.Rejected)
		}
		if ev.From != nil {
			s.refusedSender(ev.From).refused(ev.Kind == maillog.Rejected)
		}
	case maillog.RejectWarning:
		s.t.RejectWarnings++
	case maillog.Held:
		s.t.Held++
		s.held.addBytes(ev.Reason).n++
	case maillog.Discarded:
		s.t.Discarded++
		s.discarded.addBytes(ev.Reason).n++
	}
}

func (s *Summary) problem(ev *maillog.Event) {
	kind := string(ev.Class)
	if kind != "milter error" && (ev.MTA == maillog.Bridge || containsFold(ev.Reason, "milter")) {
		kind += " (milter)"
	}
	if ev.MTA == maillog.Bridge {
		kind = strings.Replace(kind, "(milter)", "(mf-bridge)", 1)
	}
	key := string(ev.Prog) + "\x00" + kind
	p := s.problems[key]
	now := ev.Time.UnixNano()
	if p == nil {
		if len(s.problems) >= s.o.MaxKeys {
			key = other + "\x00" + kind
			p = s.problems[key]
		}
		if p == nil {
			p = &problem{first: now, sample: trim(ev.Reason)}
			s.problems[key] = p
		}
	}
	p.n++
	s.t.Problems++
	p.first, p.last = min(p.first, now), max(p.last, now)
}

func containsFold(b []byte, s string) bool {
	return strings.Contains(strings.ToLower(string(b)), s)
}

// forwardCopy marks m as the copy of a qmail forward logged before it.
func (s *Summary) forwardCopy(m *msg) {
	for _, f := range s.forwards {
		if !f.done && f.host == m.key.host && f.from == m.from && f.t <= m.recv+int64(s.o.Window) {
			f.done = true
			m.again = true
			return
		}
	}
}

func (s *Summary) delivery(ev *maillog.Event, k uint64, host string) {
	var addr []byte // no string made: most recipients are looked up, not kept
	var startT int64
	var m *msg
	if ev.MTA == maillog.Qmail { // the outcome names the delivery, its start the message
		sk := startID(host, ev.Ref)
		st, ok := s.starts[sk]
		if !ok {
			// Started before the first line read: counted, but with
			// no message to take a size, recipient or delay from.
			s.Lines.Unjoined++
			s.outcome(ev, nil, nil, 1)
			return
		}
		delete(s.starts, sk) // a retry is a new delivery number
		addr, startT = []byte(st.rcpt), st.t
		m = s.get(st.key.id(), st.key.host, []byte(st.key.qid))
	} else {
		addr = ev.Addr
		m = s.get(k, host, ev.QID)
	}
	m.seen = s.clock
	now := ev.Time.UnixNano()
	n := int64(ev.N)
	if ev.Kind == maillog.Forwarded && ev.MTA == maillog.Qmail {
		// qmail-local injected a copy; it is the same message.
		s.t.Forwarded += n
		for i := len(s.waiting) - 1; i >= 0; i-- {
			c := s.waiting[i]
			if c != m && !c.decided && !c.again && c.key.host == host && c.from == m.from && c.recv >= startT {
				c.again = true
				return
			}
		}
		s.forwards = append(s.forwards, &forward{host: host, from: m.from, t: now})
		return
	}
	if ev.Kind == maillog.Delivered && ev.Next != nil { // handed to a relay on this machine
		c := keyID(host, ev.Next)
		if cm, ok := s.lookup(c); ok { // its copy came first: a content filter
			s.t.Filtered += n
			cm.again = true
			return
		}
		delay := ev.Delay
		if delay < 0 && m.recv != 0 {
			delay = float64(now-m.recv) / 1e9
		}
		h := &handoff{id: c, copy: qkey{host, string(ev.Next)}, t: now, n: n, size: max(m.size, 0), addr: string(addr), delay: delay}
		if old, ok := s.handoffs[c]; ok {
			s.settle(old)
		}
		s.handoffs[c] = h
		s.pending = append(s.pending, h)
		return
	}
	s.outcome(ev, m, addr, n)
}

// outcome counts the delivery, deferral or bounce of n recipients of m
// (nil when the message is unknown).
func (s *Summary) outcome(ev *maillog.Event, m *msg, addr []byte, n int64) {
	delay := ev.Delay
	if delay < 0 && m != nil && m.recv != 0 {
		delay = float64(ev.Time.UnixNano()-m.recv) / 1e9
	}
	h := ev.Time.In(s.o.Loc).Hour()
	switch ev.Kind {
	case maillog.Delivered:
		size := int64(0)
		if m != nil {
			size = max(m.size, 0)
		}
		s.delivered(ev.Time, n, size, addr, delay)
	case maillog.Forwarded:
		s.t.Forwarded += n
	case maillog.Deferred:
		s.t.Deferrals += n
		if m != nil && !m.deferred {
			m.deferred = true
			s.t.Deferred++
		}
		s.day(ev.Time)[2] += n
		s.hours[h][2] += n
		if len(addr) > 0 {
			r := s.rcptDom.addKey(maillog.Domain(addr))
			r.defers += n
			if delay >= 0 {
				r.max = math.Max(r.max, delay)
			}
		}
		s.deferReason.addBytes(ev.Reason).n += n
	case maillog.Bounced:
		s.t.Bounced += n
		s.day(ev.Time)[3] += n
		s.hours[h][3] += n
		s.bounceReason.addBytes(ev.Reason).n += n
	}
}

// delivered counts n recipients delivered at t.
func (s *Summary) delivered(t time.Time, n, size int64, addr []byte, delay float64) {
	s.t.Delivered += n
	s.day(t)[1] += n
	s.hours[t.In(s.o.Loc).Hour()][1] += n
	size *= n
	s.t.BytesDelivered += size
	if len(addr) == 0 {
		return
	}
	r := s.rcptDom.addKey(maillog.Domain(addr))
	r.count(size)
	r.n += n - 1
	if delay >= 0 {
		r.delay(delay)
		s.delays.add(delay)
	}
	s.rcpts.addKey(addr).count(size)
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

func trim(b []byte) string { return string(trimBytes(b)) }

// trimBytes is trimString on bytes: b cut to reasonWidth, not inside a
// character.
func trimBytes(b []byte) []byte {
	if len(b) > reasonWidth {
		i := reasonWidth
		for i > 0 && !utf8.RuneStart(b[i]) {
			i--
		}
		b = b[:i]
	}
	return b
}

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

// Finish settles everything still open, as if the window had passed:
// call it once, after the last Add, unless the state is to be kept for
// the next run (Keep).
func (s *Summary) Finish() {
	for _, h := range s.pending {
		s.settle(h)
	}
	s.pending, s.forwards = nil, nil
	s.decideAll(s.old, s.cur)
	s.waiting = nil
	s.old, s.cur = map[uint64]*msg{}, map[uint64]*msg{}
}

// lessConcat is a1+a2 < b1+b2, without making either string.
func lessConcat(a1, a2, b1, b2 string) bool {
	for {
		if a1 == "" {
			a1, a2 = a2, ""
		}
		if b1 == "" {
			b1, b2 = b2, ""
		}
		if a1 == "" || b1 == "" {
			return a1 == "" && b1 != ""
		}
		n := min(len(a1), len(b1))
		if a1[:n] != b1[:n] {
			return a1[:n] < b1[:n]
		}
		a1, b1 = a1[n:], b1[n:]
	}
}

// decideAll decides messages in order of receipt, so that a table that
// fills up fills the same way on every run.
func (s *Summary) decideAll(gs ...map[uint64]*msg) {
	var ms []*msg
	for _, g := range gs {
		for _, m := range g {
			if !m.decided {
				ms = append(ms, m)
			}
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].recv != ms[j].recv {
			return ms[i].recv < ms[j].recv
		}
		return lessConcat(ms[i].from, ms[i].client, ms[j].from, ms[j].client)
	})
	for _, m := range ms {
		s.decide(m)
	}
}
