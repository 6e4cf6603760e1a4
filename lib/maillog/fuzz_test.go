package maillog

import (
	"bytes"
	"testing"
	"time"
)

// check parses a line the fuzzer made and holds the parser to what its
// callers rely on: no panic, events with a kind, fields inside the line.
func check(t *testing.T, line []byte, p func([]byte, *Event) Result) {
	var ev Event
	ev.reset()
	r := p(line, &ev)
	if r != HasEvent {
		return
	}
	if ev.Kind == None {
		t.Fatalf("%q: event without a kind", line)
	}
	if ev.Size < -1 || ev.N < 1 {
		t.Fatalf("%q: size %d, n %d", line, ev.Size, ev.N)
	}
	if ev.Kind == Verdict && ev.Record == nil {
		t.Fatalf("%q: verdict without a record", line)
	}
	for _, f := range [][]byte{ev.QID, ev.From, ev.Addr, ev.Relay, ev.Next, ev.Ref} {
		if len(f) > len(line) {
			t.Fatalf("%q: field %q longer than the line", line, f)
		}
	}
}

func whole(line []byte, ev *Event) Result {
	return NewParser(time.UTC, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)).Parse(line, ev)
}

func FuzzSyslog(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) { check(t, line, whole) })
}

func FuzzPostfix(f *testing.F) {
	f.Fuzz(func(t *testing.T, prog, msg []byte) {
		check(t, msg, func(b []byte, ev *Event) Result { return parsePostfix(prog, b, ev) })
	})
}

func FuzzSendmail(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) { check(t, msg, parseSendmail) })
}

func FuzzQmail(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		check(t, msg, parseQmail)
		check(t, msg, func(b []byte, ev *Event) Result { return parseQmailSyslog([]byte("qmail"), b, ev) })
		if len(msg) > 0 && msg[0] == '@' {
			check(t, msg, whole)
		}
	})
}

func FuzzRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		check(t, line, parseRecord)
		if !bytes.HasPrefix(line, []byte("{")) {
			return
		}
		var ev Event
		if parseRecord(line, &ev) == HasEvent && ev.Time.IsZero() {
			t.Fatalf("%q: record without a time", line)
		}
	})
}
