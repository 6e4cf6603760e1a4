package maillog

import "bytes"

// parseSendmail reads the message of a sendmail line.
func parseSendmail(msg []byte, ev *Event) Result {
	ev.MTA = Sendmail
	qid, rest, ok := postfixQID(msg) // same shape: letters and digits, ": "
	if !ok {
		rest = msg
	}
	if sendmailProblem(rest, ev) {
		ev.QID = nil
		return HasEvent
	}
	if !ok {
		return Known
	}
	if string(qid) != "NOQUEUE" {
		ev.QID = qid
	}
	switch {
	case hasPrefix(rest, "from="):
		sz, ok := value(rest, "size=", ',')
		if !ok {
			return Unparsed
		}
		if bytes.Contains(rest, []byte(", nrcpts=0,")) {
			return Known // every recipient refused: nothing was queued
		}
		ev.Kind = Received
		ev.From = addrValue(rest[len("from="):])
		ev.Size, _ = number(sz)
		ev.Client, _ = value(rest, ", relay=", ',')
		return HasEvent
	case hasPrefix(rest, "to="):
		return sendmailDelivery(rest, ev)
	case hasPrefix(rest, "ruleset="):
		rej, ok := after(rest, "reject=")
		if !ok {
			return Known // discard, quarantine of rulesets: rare, unlisted
		}
		ev.Kind = Rejected
		ev.Class = upto(rest[len("ruleset="):], ',')
		ev.Client, _ = value(rest, ", relay=", ',')
		ev.Addr, _ = value(rest, "arg1=<", '>')
		ev.Reason = sendmailReply(rej)
		temporary(rej, ev)
		return HasEvent
	case hasPrefix(rest, "Milter: "):
		// "Milter: data, reject=554 ...", "Milter: to=<x>, reject=...",
		// "Milter: data, discard". Sendmail 8.17 logs most of these again
		// as "milter=NAME, reject=...": those are not counted twice.
		switch {
		case bytes.Contains(rest, []byte("reject=")):
			ev.Kind = Rejected
			r, _ := after(rest, "reject=")
			ev.Reason = sendmailReply(r)
			temporary(r, ev)
		case bytes.Contains(rest, []byte(", discard")):
			ev.Kind = Discarded
			ev.Reason = []byte("milter")
		case bytes.Contains(rest, []byte("quarantine=")):
			ev.Kind = Held
			ev.Reason, _ = after(rest, "quarantine=")
		default:
			return Known // Milter add:, change:, insert:
		}
		ev.Class = []byte("milter")
		ev.Addr, _ = value(rest, "to=<", '>')
		return HasEvent
	case hasPrefix(rest, "milter="):
		// "milter=mf, quarantine=held for review" is the only line of a
		// quarantine; its reject and discard twins are not counted.
		q, ok := after(rest, ", quarantine=")
		if !ok {
			return Known
		}
		ev.Kind = Held
		ev.Reason = q
		ev.Class = []byte("milter")
		return HasEvent
	case hasPrefix(rest, "<"):
		// "<x@example.org>... User unknown": a recipient refused at RCPT.
		i := bytes.Index(rest, []byte(">... "))
		if i < 0 {
			return Known
		}
		ev.Kind = Rejected
		ev.Addr = rest[1:i]
		ev.Reason = rest[i+len(">... "):]
		ev.Class = ev.Reason
		ev.UnlessQueued = true
		return HasEvent
	}
	if knownPrefix(rest, sendmailKnown) {
		return Known
	}
	return Unrecognized
}

// sendmailKnown are the queue id lines that say nothing to count.
var sendmailKnown = []string{"DSN:", "return to sender:", "postmaster notify:", "lost input channel", "STARTTLS", "AUTH=", "alias ",
	"clone ", "done;", "did not issue", "collect:", "Authentication-Warning", "sender notify:", "timeout waiting", "discarded",
	"Milter ", "milter=", "Milter:", "SMTP outgoing connect", "makeconnection", "tls_", "TLS", "forward ", "ruleset=", "--- ",
	"<", "message size", "locked", "rejecting commands", "aborted", "SYSERR", "child ", "Truncated ", "headers too large",
	"VRFY ", "EXPN ", "ETRN ", "QUIT", "Null connection", "available mailers", "Unable to", "lost connection", "tried"}

// addrValue reads "<a@b>, ..." or "a@b, ...".
func addrValue(b []byte) []byte {
	if len(b) > 0 && b[0] == '<' {
		return upto(b[1:], '>')
	}
	return upto(b, ',')
}

// sendmailReply reads "550 5.7.1 <x@y>... Relaying denied".
func sendmailReply(r []byte) []byte {
	r = replyText(r)
	if i := bytes.Index(r, []byte("... ")); i >= 0 && len(r) > 0 && r[0] == '<' {
		r = r[i+4:]
	}
	return r
}

func sendmailDelivery(rest []byte, ev *Event) Result {
	list := rest[len("to="):]
	end := bytes.Index(list, []byte(", "))
	st, ok := after(rest, ", stat=")
	if end < 0 || !ok {
		return Unparsed
	}
	list = list[:end]
	ev.N = bytes.Count(list, []byte(",")) + 1
	ev.Addr = addrValue(list)
	ev.Relay, _ = value(rest, ", relay=", ',')
	if d, ok := value(rest, ", delay=", ','); ok {
		ev.Delay = clock(d)
	}
	ev.Reason = st
	dsn, _ := value(rest, ", dsn=", ',')
	switch {
	case hasPrefix(st, "Sent"):
		ev.Kind = Delivered
		if loopback(ev.Relay) {
			ev.Next = queuedAs(st)
		}
	case hasPrefix(st, "Deferred"):
		ev.Kind = Deferred
	case len(dsn) > 0 && dsn[0] == '5', hasPrefix(st, "Cannot send message"):
		// A delivery that failed for good carries a 5.x.x status, or
		// is the end of a message's time in the queue.
		ev.Kind = Bounced
	default:
		// queued (accepted, not tried yet), quarantined, discarded, and
		// the to= line of a transaction that failed: a milter's reject
		// (counted from its Milter: line), a timeout in collect, a
		// sender's abort. None is a bounce.
		return Known
	}
	return HasEvent
}

// sendmailProblem reads the lines by which sendmail reports trouble:
// SYSERR, milter errors, and clients refused for talking before the
// greeting (greet_pause).
func sendmailProblem(rest []byte, ev *Event) bool {
	switch {
	case hasPrefix(rest, "SYSERR"):
		ev.Class = []byte("syserr")
		if i := bytes.Index(rest, []byte("): ")); i >= 0 && i < 40 {
			rest = rest[i+3:]
		}
	case hasPrefix(rest, "Milter (") && !bytes.Contains(rest, []byte("init success")),
		hasPrefix(rest, "milter_"), hasPrefix(rest, "Milter: ") && bytes.Contains(rest, []byte("error")),
		bytes.Contains(rest, []byte("filter in error state")):
		ev.Class = []byte("milter error")
	case bytes.Contains(rest, []byte("due to pre-greeting traffic")):
		ev.Class = []byte("pre-greeting traffic")
	default:
		return false
	}
	ev.Kind = Problem
	ev.Reason = rest
	return true
}

// clock reads sendmail's "[D+]HH:MM:SS" delays; -1 when it cannot.
func clock(b []byte) float64 {
	var days int64
	if i := bytes.IndexByte(b, '+'); i >= 0 {
		days, _ = number(b[:i])
		b = b[i+1:]
	}
	if len(b) != 8 || b[2] != ':' || b[5] != ':' {
		return -1
	}
	h, ok1 := two(b[0:2])
	m, ok2 := two(b[3:5])
	s, ok3 := two(b[6:8])
	if !ok1 || !ok2 || !ok3 {
		return -1
	}
	return float64(days*86400 + int64(h*3600+m*60+s))
}
