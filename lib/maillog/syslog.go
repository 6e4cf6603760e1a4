package maillog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
)

// header is a syslog line taken apart; the time is read only when the
// line turns out to hold an event, since most lines do not.
type header struct {
	stamp []byte // "Feb 25 13:58:26" or an RFC 3339 time
	host  []byte
	prog  []byte // "postfix/smtpd", "sendmail"
	msg   []byte
	t     time.Time // already read (journal entries)
}

// journalEntry is the part of a "journalctl -o json" line that is read.
type journalEntry struct {
	Realtime string `json:"__REALTIME_TIMESTAMP"`
	Host     string `json:"_HOSTNAME"`
	Ident    string `json:"SYSLOG_IDENTIFIER"`
	Message  string `json:"MESSAGE"`
}

// journal reads one line of "journalctl -o json"; a MESSAGE journald
// kept as an array of bytes (not UTF-8) is not read.
func journal(line []byte) (h header, ok bool) {
	var j journalEntry
	if json.Unmarshal(line, &j) != nil || j.Ident == "" {
		return h, false
	}
	us, err := strconv.ParseInt(j.Realtime, 10, 64)
	if err != nil || us <= 0 {
		return h, false
	}
	h.t = time.UnixMicro(us).UTC()
	h.host, h.prog, h.msg = []byte(j.Host), []byte(j.Ident), []byte(j.Message)
	return h, true
}

var months = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

// header splits a classic (RFC 3164), RFC 3339 (rsyslog, journalctl -o
// short-iso) or RFC 5424 syslog line.
func (p *Parser) header(line []byte, h *header) bool {
	// h is filled in place: a header is five slices, not copied out per line.
	if len(line) > 0 && line[0] == '<' { // a priority, as sent on the wire
		i := bytes.IndexByte(line, '>')
		if i < 0 || i > 4 {
			return false
		}
		line = line[i+1:]
		if len(line) > 2 && line[0] == '1' && line[1] == ' ' {
			var ok bool
			*h, ok = rfc5424(line[2:])
			return ok
		}
	}
	var rest []byte
	switch {
	case len(line) >= 16 && line[3] == ' ' && line[6] == ' ' && line[9] == ':' && line[12] == ':' && line[15] == ' ':
		h.stamp, rest = line[:15], line[16:]
	case len(line) >= 20 && line[4] == '-' && line[7] == '-' && line[10] == 'T':
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return false
		}
		h.stamp, rest = line[:i], line[i+1:]
	default:
		return false
	}
	i := bytes.IndexByte(rest, ' ')
	if i <= 0 {
		return false
	}
	h.host, rest = rest[:i], rest[i+1:]
	return h.tag(rest)
}

// tagEnd are the bytes that end a program's name: a look-up, not three
// compares a byte.
var tagEnd = [256]bool{'[': true, ':': true, ' ': true}

// tag reads "prog[pid]: msg" or "prog: msg".
func (h *header) tag(rest []byte) bool {
	i := 0
	for i < len(rest) && !tagEnd[rest[i]] {
		i++
	}
	if i == 0 || i == len(rest) {
		return false
	}
	h.prog = rest[:i]
	rest = rest[i:]
	if rest[0] == '[' {
		j := bytes.IndexByte(rest, ']')
		if j < 0 {
			return false
		}
		rest = rest[j+1:]
	}
	if len(rest) < 2 || rest[0] != ':' || rest[1] != ' ' {
		return false
	}
	h.msg = rest[2:]
	if hasPrefix(h.msg, "[ID ") { // Solaris message ids
		if j := bytes.IndexByte(h.msg, ']'); j > 0 && j+2 <= len(h.msg) {
			h.msg = h.msg[j+2:]
		}
	}
	return true
}

// rfc5424 reads "TIMESTAMP HOST APP PROCID MSGID SD MSG".
func rfc5424(line []byte) (h header, ok bool) {
	f := bytes.SplitN(line, []byte(" "), 7)
	if len(f) < 7 || len(f[0]) == 0 || len(f[1]) == 0 || len(f[2]) == 0 || len(f[5]) == 0 {
		return h, false
	}
	h.stamp, h.host, h.prog = f[0], f[1], f[2]
	msg := f[6]
	if f[5][0] == '[' { // structured data: skip to the closing "] "
		i := bytes.Index(line, []byte("] "))
		if i < 0 {
			return h, false
		}
		msg = line[i+2:]
	} else if string(f[5]) != "-" {
		return h, false
	}
	h.msg = bytes.TrimPrefix(msg, []byte("\xef\xbb\xbf"))
	return h, true
}

// stamp reads the header's time.
func (p *Parser) stamp(h *header) (time.Time, bool) {
	if !h.t.IsZero() {
		return h.t, true
	}
	s := h.stamp
	if len(s) == 15 && s[3] == ' ' {
		w := [2]uint64{binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[7:15])}
		if w == p.lastStamp && !p.lastTime.IsZero() {
			return p.lastTime, true
		}
		t, ok := p.classic(s)
		if ok {
			p.lastStamp, p.lastTime = w, t
		}
		return t, ok
	}
	return p.rfc3339(s)
}

func (p *Parser) classic(s []byte) (time.Time, bool) {
	mon, ok := months[string(s[:3])]
	if !ok {
		return time.Time{}, false
	}
	day := 0
	for _, c := range s[4:6] {
		switch {
		case c == ' ':
		case c >= '0' && c <= '9':
			day = day*10 + int(c-'0')
		default:
			return time.Time{}, false
		}
	}
	hh, ok1 := two(s[7:9])
	mm, ok2 := two(s[10:12])
	ss, ok3 := two(s[13:15])
	if !ok1 || !ok2 || !ok3 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	y := p.now.In(p.loc).Year()
	t := time.Date(y, mon, day, hh, mm, ss, 0, p.loc)
	if t.After(p.now.Add(24 * time.Hour)) {
		t = time.Date(y-1, mon, day, hh, mm, ss, 0, p.loc)
	}
	return t, true
}

func two(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// rfc3339 also takes the "+0100" offsets of journalctl -o short-iso and
// a time without any offset, which is local.
func (p *Parser) rfc3339(s []byte) (time.Time, bool) {
	str := string(s)
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"} {
		if t, err := time.Parse(layout, str); err == nil {
			return t, true
		}
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", str, p.loc); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// tai64n reads multilog's "@4000000063a1b2c3xxxxxxxx " label. Like
// tai64nlocal it takes TAI to be UTC plus 10 seconds.
func tai64n(line []byte) (time.Time, []byte, bool) {
	if len(line) < 26 || line[25] != ' ' {
		return time.Time{}, nil, false
	}
	var sec, nsec uint64
	for i, c := range line[1:25] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return time.Time{}, nil, false
		}
		if i < 16 {
			sec = sec<<4 | uint64(d)
		} else {
			nsec = nsec<<4 | uint64(d)
		}
	}
	const base = 1<<62 + 10
	if sec < base || sec-base > 1<<40 || nsec >= 1e9 {
		return time.Time{}, nil, false
	}
	return time.Unix(int64(sec-base), int64(nsec)).UTC(), line[26:], true
}

// Time reads the time of any line Parse understands, event or not; it
// orders log files by their first line.
func (p *Parser) Time(line []byte) (time.Time, bool) {
	switch {
	case len(line) == 0:
		return time.Time{}, false
	case line[0] == '@':
		t, _, ok := tai64n(line)
		return t, ok
	case line[0] == '{' && bytes.Contains(line, []byte(`"__REALTIME_TIMESTAMP"`)):
		h, ok := journal(line)
		return h.t, ok
	case line[0] == '{':
		var ev Event
		if parseRecord(line, &ev) != HasEvent {
			return time.Time{}, false
		}
		return ev.Time, true
	}
	if t, _, ok := p.tai64nlocal(line); ok {
		return t, true
	}
	var h header
	if !p.header(line, &h) {
		return time.Time{}, false
	}
	return p.stamp(&h)
}
