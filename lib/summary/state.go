package summary

import (
	"sort"
	"time"
)

// State is what a Summary still has open at the end of a run, for the
// next run of cron mode to go on with: messages in the queue (their
// sizes and senders, whether their receipt was counted), qmail deliveries
// under way, hand-offs and forwards whose copy is not seen yet. Without
// it a message whose lines straddle two runs would lose its join.
type State struct {
	Clock    int64          `json:"clock"`
	Messages []SavedMessage `json:"messages"`
	Starts   []SavedStart   `json:"qmail_deliveries,omitempty"`
	Handoffs []SavedHandoff `json:"handoffs,omitempty"`
	Forwards []SavedForward `json:"forwards,omitempty"`
}

// SavedMessage is a msg; times are Unix nanoseconds.
type SavedMessage struct {
	Host   string `json:"h,omitempty"`
	QID    string `json:"q"`
	Recv   int64  `json:"r,omitempty"`
	Seen   int64  `json:"t"`
	Client string `json:"c,omitempty"`
	From   string `json:"f,omitempty"`
	Size   int64  `json:"s"`
	Flags  string `json:"x,omitempty"` // letters: Sized Received Again Deferred decideD removeD
}

// SavedStart is a qmail delivery under way.
type SavedStart struct {
	Host string `json:"h,omitempty"`
	Ref  string `json:"n"`
	QID  string `json:"q"`
	Rcpt string `json:"a"`
	T    int64  `json:"t"`
}

// SavedHandoff is a hand-off to a relay on this machine not settled yet.
type SavedHandoff struct {
	Host  string  `json:"h,omitempty"`
	Copy  string  `json:"q"`
	T     int64   `json:"t"`
	N     int64   `json:"n"`
	Size  int64   `json:"s"`
	Addr  string  `json:"a"`
	Delay float64 `json:"d"`
}

// SavedForward is a qmail forward whose copy is not seen yet.
type SavedForward struct {
	Host string `json:"h,omitempty"`
	From string `json:"f"`
	T    int64  `json:"t"`
}

var flagLetters = "SRADdr"

func (m *msg) flags() string {
	var b []byte
	for i, on := range []bool{m.sized, m.received, m.again, m.deferred, m.decided, m.removed} {
		if on {
			b = append(b, flagLetters[i])
		}
	}
	return string(b)
}

func (m *msg) setFlags(f string) {
	for _, c := range []byte(f) {
		switch c {
		case 'S':
			m.sized = true
		case 'R':
			m.received = true
		case 'A':
			m.again = true
		case 'D':
			m.deferred = true
		case 'd':
			m.decided = true
		case 'r':
			m.removed = true
		case 'w':
			m.waiting = true
		}
	}
}

// Keep is Finish for cron mode: what the window has not settled yet is
// not counted but returned, to be given to the next run's Restore.
// Messages nothing was logged about for MaxAge are let go (their receipt
// counted), and at most MaxMessages are kept.
func (s *Summary) Keep() *State {
	st := &State{Clock: s.clock}
	// The receipts still to decide first, in the order of the queue
	// they are decided in; then the other messages, latest first.
	var ms []*msg
	for _, m := range s.waiting {
		if !m.decided {
			ms = append(ms, m)
		}
	}
	var rest []*msg
	for _, g := range []map[uint64]*msg{s.old, s.cur} {
		for _, m := range g {
			if !m.waiting || m.decided {
				rest = append(rest, m)
			}
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].seen != rest[j].seen {
			return rest[i].seen > rest[j].seen
		}
		return rest[i].key.qid < rest[j].key.qid
	})
	ms = append(ms, rest...)
	for i, m := range ms {
		if s.expired(m) || i >= s.o.MaxMessages {
			s.expire(m)
			continue
		}
		f := m.flags()
		if m.waiting && !m.decided {
			f += "w"
		}
		st.Messages = append(st.Messages, SavedMessage{Host: m.key.host, QID: m.key.qid, Recv: m.recv, Seen: m.seen,
			Client: m.client, From: m.from, Size: m.size, Flags: f})
	}
	horizon := s.clock - int64(s.o.MaxAge)
	for _, v := range s.starts {
		if v.t >= horizon {
			st.Starts = append(st.Starts, SavedStart{Host: v.key.host, Ref: v.ref, QID: v.key.qid, Rcpt: v.rcpt, T: v.t})
		}
	}
	sort.Slice(st.Starts, func(i, j int) bool { return st.Starts[i].T < st.Starts[j].T })
	for _, h := range s.pending {
		if !h.done {
			st.Handoffs = append(st.Handoffs, SavedHandoff{Host: h.copy.host, Copy: h.copy.qid, T: h.t, N: h.n, Size: h.size, Addr: h.addr, Delay: h.delay})
		}
	}
	for _, f := range s.forwards {
		if !f.done {
			st.Forwards = append(st.Forwards, SavedForward{Host: f.host, From: f.from, T: f.t})
		}
	}
	s.old, s.cur, s.waiting, s.pending, s.forwards = map[uint64]*msg{}, map[uint64]*msg{}, nil, nil, nil
	return st
}

// Restore takes up what the last run kept; call it before the first Add.
func (s *Summary) Restore(st *State) {
	if st == nil {
		return
	}
	s.clock = st.Clock
	for _, v := range st.Messages {
		k := qkey{s.host([]byte(v.Host)), v.QID}
		m := &msg{id: k.id(), key: k, recv: v.Recv, seen: v.Seen, client: v.Client, from: v.From, size: v.Size}
		m.setFlags(v.Flags)
		s.keep(m)
		if m.waiting {
			s.waiting = append(s.waiting, m)
		}
	}
	for _, v := range st.Starts {
		h := s.host([]byte(v.Host))
		s.starts[startID(h, []byte(v.Ref))] = qstart{v.Ref, qkey{h, v.QID}, v.Rcpt, v.T}
	}
	sort.Slice(st.Handoffs, func(i, j int) bool { return st.Handoffs[i].T < st.Handoffs[j].T })
	for _, v := range st.Handoffs {
		c := qkey{s.host([]byte(v.Host)), v.Copy}
		h := &handoff{id: c.id(), copy: c, t: v.T, n: v.N, size: v.Size, addr: v.Addr, delay: v.Delay}
		s.handoffs[h.id] = h
		s.pending = append(s.pending, h)
	}
	for _, v := range st.Forwards {
		s.forwards = append(s.forwards, &forward{host: s.host([]byte(v.Host)), from: v.From, t: v.T})
	}
}

// Clock is the latest time logged so far.
func (s *Summary) Clock() time.Time { return time.Unix(0, s.clock) }
