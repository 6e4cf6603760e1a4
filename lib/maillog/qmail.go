package maillog

import "bytes"

// parseQmailSyslog reads qmail lines that went through splogger (which
// puts its own "1700000000.123456 " time first) or syslog.
func parseQmailSyslog(prog, msg []byte, ev *Event) Result {
	if i := bytes.IndexByte(msg, ' '); i > 0 && msg[0] >= '0' && msg[0] <= '9' && bytes.IndexByte(msg[:i], '.') > 0 {
		if _, ok := number(msg); ok {
			msg = msg[i+1:]
		}
	}
	switch string(prog) {
	case "rblsmtpd":
		ev.MTA = Qmail
		return rblsmtpd(msg, ev)
	case "tcpserver":
		ev.MTA = Qmail
		return tcpserver(msg, ev)
	}
	return parseQmail(msg, ev)
}

// parseQmail reads a qmail-send line as multilog keeps it, after the
// time label, and the rblsmtpd and tcpserver lines of a qmail-smtpd log.
func parseQmail(msg []byte, ev *Event) Result {
	ev.MTA = Qmail
	switch {
	case hasPrefix(msg, "info msg "):
		// info msg 1234: bytes 5678 from <a@b> qp 99 uid 89
		rest := msg[len("info msg "):]
		i := bytes.IndexByte(rest, ':')
		b, ok := after(rest, ": bytes ")
		if i <= 0 || !ok {
			return Unparsed
		}
		ev.Kind = Received
		ev.QID = rest[:i]
		ev.Size, _ = number(b)
		ev.From, _ = value(rest, " from <", '>')
		if string(ev.From) == "#@[]" { // the double-bounce sender: as good as <>
			ev.From = ev.From[:0]
		}
		ev.Client = []byte("qmail")
		return HasEvent
	case hasPrefix(msg, "starting delivery "):
		// starting delivery 12: msg 1234 to remote bob@example.com
		rest := msg[len("starting delivery "):]
		i := bytes.Index(rest, []byte(": msg "))
		if i <= 0 {
			return Unparsed
		}
		ev.Kind = Start
		ev.Ref = rest[:i]
		rest = rest[i+len(": msg "):]
		ev.QID = upto(rest, ' ')
		t, ok := after(rest, " to ")
		if !ok {
			return Unparsed
		}
		ev.Relay = upto(t, ' ')
		if j := bytes.IndexByte(t, ' '); j >= 0 {
			ev.Addr = t[j+1:]
		}
		return HasEvent
	case hasPrefix(msg, "delivery "):
		// delivery 12: success: 1.2.3.4_accepted_message./Remote_host_said:_250_ok/
		rest := msg[len("delivery "):]
		i := bytes.Index(rest, []byte(": "))
		if i <= 0 {
			return Unparsed
		}
		ev.Ref = rest[:i]
		st := rest[i+2:]
		switch {
		case hasPrefix(st, "success") && forwarded(st):
			ev.Kind = Forwarded
		case hasPrefix(st, "success"):
			ev.Kind = Delivered
		case hasPrefix(st, "deferral"):
			ev.Kind = Deferred
		case hasPrefix(st, "failure"):
			ev.Kind = Bounced
		default:
			return Unparsed
		}
		if j := bytes.IndexByte(st, ':'); j >= 0 {
			ev.Reason = bytes.TrimSpace(bytes.TrimRight(st[j+1:], "/"))
		}
		return HasEvent
	case hasPrefix(msg, "end msg "):
		ev.Kind = Removed
		ev.QID = bytes.TrimSpace(msg[len("end msg "):])
		return HasEvent
	case hasPrefix(msg, "triple bounce: discarding bounce/"):
		ev.Kind = Discarded
		ev.QID = msg[len("triple bounce: discarding bounce/"):]
		ev.Class = []byte("triple bounce")
		ev.Reason = ev.Class
		return HasEvent
	case hasPrefix(msg, "rblsmtpd: "):
		return rblsmtpd(msg[len("rblsmtpd: "):], ev)
	case hasPrefix(msg, "tcpserver: "):
		return tcpserver(msg[len("tcpserver: "):], ev)
	case problem(msg, ev):
		return HasEvent
	case hasPrefix(msg, "new msg "), hasPrefix(msg, "bounce msg "), hasPrefix(msg, "status: "), hasPrefix(msg, "qmail-smtpd"),
		hasPrefix(msg, "qmail-send"), hasPrefix(msg, "exiting"):
		return Known
	}
	return Unparsed
}

// forwarded reports whether qmail-local's "success: did_0+1+0/" says
// it forwarded the message (the middle number) rather than deliver it to
// a mailbox or a program.
func forwarded(st []byte) bool {
	d, ok := after(st, "did_")
	if !ok {
		return false
	}
	files, ok1 := number(d)
	i := bytes.IndexByte(d, '+')
	if !ok1 || i < 0 {
		return false
	}
	fwd, ok2 := number(d[i+1:])
	j := bytes.IndexByte(d[i+1:], '+')
	if !ok2 || j < 0 {
		return false
	}
	progs, _ := number(d[i+1+j+1:])
	return fwd > 0 && files == 0 && progs == 0
}

// rblsmtpd reads "1.2.3.4 pid 123: 451 http://www.spamhaus.org/query/bl?ip=1.2.3.4".
func rblsmtpd(msg []byte, ev *Event) Result {
	i := bytes.Index(msg, []byte(": "))
	if i <= 0 {
		return Unparsed
	}
	ev.Kind = Rejected
	ev.Client = upto(msg, ' ')
	ev.Reason = replyText(msg[i+2:])
	temporary(msg[i+2:], ev)
	ev.Class = []byte("rblsmtpd")
	return HasEvent
}

// tcpserver reads "deny 1234 0:192.0.2.1:25 :198.51.100.7::4567"; the
// rest of its lines (status, pid, ok, end) count nothing.
func tcpserver(msg []byte, ev *Event) Result {
	if !hasPrefix(msg, "deny ") {
		return Known
	}
	ev.Kind = Rejected
	ev.Class = []byte("tcprules")
	ev.Reason = []byte("denied by tcprules")
	f := bytes.Fields(msg)
	if len(f) >= 4 {
		r := f[3]
		if i := bytes.IndexByte(r, ':'); i >= 0 {
			r = r[i+1:]
		}
		ev.Client = upto(r, ':')
	}
	return HasEvent
}
