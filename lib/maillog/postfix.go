package maillog

import (
	"bytes"
)

// parsePostfix reads the message of a line logged by a Postfix daemon
// (prog "postfix/smtpd", "postfix/smtps/smtpd", "postfix-out/smtp", ...).
func parsePostfix(prog, msg []byte, ev *Event) Result {
	ev.MTA = Postfix
	daemon := prog
	if i := bytes.LastIndexByte(prog, '/'); i >= 0 {
		daemon = prog[i+1:]
	}
	if problem(msg, ev) { // before the queue id: "fatal" and "panic" look like one
		return HasEvent
	}
	qid, rest, ok := postfixQID(msg)
	if !ok {
		if knownPrefix(msg, postfixNoQueue) {
			return Known
		}
		return Unrecognized
	}
	if string(qid) != "NOQUEUE" {
		ev.QID = qid
	}
	switch {
	case hasPrefix(rest, "client="):
		ev.Kind = Received
		c := rest[len("client="):]
		ev.Client = upto(c, ',')
		// smtpd logs the content filter's XFORWARD IDENT: this receipt
		// is the same message coming back.
		if o, ok := value(c, "orig_queue_id=", ','); ok {
			ev.Next = o
		}
		return HasEvent
	case string(daemon) == "pickup" && (hasPrefix(rest, "uid=") || hasPrefix(rest, "sender=")):
		ev.Kind = Received
		ev.Client = []byte("pickup")
		ev.From, _ = value(rest, "from=<", '>')
		return HasEvent
	case hasPrefix(rest, "from=<"):
		sz, ok := value(rest, "size=", ',')
		if !ok {
			return Known // "from=<>, status=expired, returned to sender"
		}
		ev.Kind = Queued
		ev.From = upto(rest[len("from=<"):], '>')
		ev.Size, _ = number(sz)
		return HasEvent
	case hasPrefix(rest, "to=<"):
		return postfixDelivery(rest, ev)
	case string(rest) == "removed":
		ev.Kind = Removed
		return HasEvent
	}
	kind, body := rejectKind(rest)
	if kind == None {
		if problem(rest, ev) {
			return HasEvent
		}
		if knownPrefix(rest, postfixQueued) {
			return Known
		}
		return Unrecognized
	}
	ev.Kind = kind
	var r Result
	if string(daemon) == "cleanup" {
		r = cleanupReject(body, ev)
	} else {
		r = smtpdReject(body, ev)
		if hasPrefix(rest, "milter-") {
			ev.Class = []byte("milter")
		}
	}
	return r
}

// temporary marks a reject whose reply is 4xx ("450 4.7.1", or
// cleanup's bare "4.7.1") as a tempfail.
func temporary(reply []byte, ev *Event) {
	if ev.Kind == Rejected && len(reply) > 1 && reply[0] == '4' && (reply[1] == '.' || reply[1] >= '0' && reply[1] <= '9') {
		ev.Kind = Tempfailed
	}
}

// The Postfix lines without a queue id, and with one, that say nothing
// to count; other lines are Unrecognized (among them the debugging lines
// of "-v").
var (
	postfixNoQueue = []string{"connect from ", "disconnect from ", "lost connection ", "timeout after ", "statistics: ",
		"daemon started", "reload ", "terminating on signal", "starting the Postfix", "stopping the Postfix", "refreshing the Postfix",
		"Postfix is running", "Postfix is using", "Trusted TLS", "Untrusted TLS", "Anonymous TLS", "Verified TLS", "SSL_accept error",
		"too many errors after ", "improper command pipelining", "CONNECT from ", "PASS OLD ", "PASS NEW ", "DNSBL rank ",
		"HANGUP after ", "COMMAND ", "PREGREET ", "DISCONNECT ", "WHITELISTED ", "BLACKLISTED ", "ALLOWLISTED ", "DENYLISTED ",
		"NOQUEUE: filter:", "NOQUEUE: client=", "NOQUEUE: lost connection", "setting up TLS", "TLS connection established",
		"message repeated ", "mail system is down", "sender non-delivery", "table ", "dict_", "connect to ", "SSL_connect",
		"host ", "Connection ", "NOQUEUE: warning", "unknown command"}
	postfixQueued = []string{"message-id=", "resent-message-id=", "sender non-delivery notification", "sender delivery status notification",
		"postmaster non-delivery notification", "host ", "enabling PIX", "info: ", "filter: ", "redirect: ", "prepend: ", "replace: ",
		"conversation with ", "lost connection ", "Cannot start TLS", "recipient limit", "uid=", "sender=", "client=",
		"to=<", "from=<", "warning: ", "expired", "skipped", "defer: ", "bounce: ", "Trusted TLS", "Untrusted TLS", "Verified TLS", "Anonymous TLS"}
)

// postfixQID splits "QID: rest"; queue ids are letters and digits.
func postfixQID(msg []byte) (qid, rest []byte, ok bool) {
	i := 0
	for i < len(msg) && i < 32 && alnum[msg[i]] {
		i++
	}
	if i < 5 || i+2 > len(msg) || msg[i] != ':' || msg[i+1] != ' ' {
		return nil, nil, false
	}
	return msg[:i], msg[i+2:], true
}

// alnum tells letters and digits by a look-up, not three ranges.
var alnum = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
	}
	return t
}()

func rejectKind(rest []byte) (Kind, []byte) {
	for _, k := range [...]struct {
		prefix string
		kind   Kind
	}{
		{"reject: ", Rejected}, {"milter-reject: ", Rejected},
		{"reject_warning: ", RejectWarning}, {"warning: header ", RejectWarning}, {"warning: body ", RejectWarning},
		{"hold: ", Held}, {"milter-hold: ", Held},
		{"discard: ", Discarded}, {"milter-discard: ", Discarded},
	} {
		if hasPrefix(rest, k.prefix) {
			b := rest[len(k.prefix):]
			if k.prefix[0] == 'w' { // keep "header"/"body"
				b = rest[len("warning: "):]
			}
			return k.kind, b
		}
	}
	return None, nil
}

func postfixDelivery(rest []byte, ev *Event) Result {
	ev.Addr = upto(rest[len("to=<"):], '>')
	stAt, relayAt, delayAt := deliveryKeys(rest)
	if stAt < 0 {
		return Unparsed
	}
	st := rest[stAt:]
	if relayAt >= 0 {
		ev.Relay = upto(rest[relayAt:], ',')
	}
	if delayAt >= 0 {
		ev.Delay, _ = seconds(upto(rest[delayAt:], ','))
	}
	status := upto(st, ' ')
	if i := bytes.IndexByte(st, '('); i >= 0 {
		r := st[i+1:]
		if j := bytes.LastIndexByte(r, ')'); j >= 0 {
			r = r[:j]
		}
		ev.Reason = r
	}
	switch string(status) {
	case "sent":
		ev.Kind = Delivered
		local := loopback(ev.Relay)
		if bytes.Contains(ev.Reason, []byte("forwarded as ")) {
			ev.Kind = Forwarded
		} else if local && bytes.Contains(ev.Reason, []byte(" Ok, discarded")) {
			// amavisd took the message and threw it away.
			ev.Kind = Discarded
			if i := bytes.Index(ev.Reason, []byte(" - ")); i >= 0 {
				ev.Reason = ev.Reason[i+3:]
			}
		} else if local {
			ev.Next = queuedAs(ev.Reason)
		}
	case "deferred":
		ev.Kind = Deferred
	case "bounced":
		ev.Kind = Bounced
	default:
		return Known // deliverable, undeliverable: address probes
	}
	return HasEvent
}

// deliveryKeys finds where the values of the first ", status=",
// "relay=" and " delay=" of a delivery begin (-1: none). Each key ends
// in '=', so it is first found at the first '=' that ends it: one pass
// over the '=' of the line, not one search of it for each key.
func deliveryKeys(b []byte) (status, relay, delay int) {
	status, relay, delay = -1, -1, -1
	ends := func(p int, key string) bool { return p >= len(key) && string(b[p-len(key):p]) == key }
	for p := 0; status < 0 || relay < 0 || delay < 0; {
		i := bytes.IndexByte(b[p:], '=')
		if i < 0 {
			break
		}
		p += i + 1
		if status < 0 && ends(p, ", status=") {
			status = p
		}
		if relay < 0 && ends(p, "relay=") {
			relay = p
		}
		if delay < 0 && ends(p, " delay=") {
			delay = p
		}
	}
	return status, relay, delay
}

// loopback reports whether a relay "name[addr]:port" is on this machine.
func loopback(relay []byte) bool {
	// "[127.", "[::1]" or "[ipv6:::1]" anywhere: one pass over the
	// relay, from bracket to bracket, for the three.
	for {
		i := bytes.IndexByte(relay, '[')
		if i < 0 {
			return false
		}
		relay = relay[i+1:]
		if hasPrefix(relay, "127.") || hasPrefix(relay, "::1]") || hasPrefix(relay, "ipv6:::1]") {
			return true
		}
	}
}

// queuedAs finds the queue id in "250 2.0.0 Ok: queued as 3F1B2C" or
// amavis's "... 250 2.0.0 Ok, id=..., from MTA([127.0.0.1]:10025): 250 2.0.0 Ok: queued as 3F1B2C".
//
// sendmail says "5AMA05b0000111 Message accepted for delivery".
func queuedAs(reason []byte) []byte {
	id := reason
	if i := bytes.LastIndex(reason, []byte("queued as ")); i >= 0 {
		id = reason[i+len("queued as "):]
	} else if j := bytes.Index(reason, []byte(" Message accepted for delivery")); j > 0 {
		id = reason[bytes.LastIndexAny(reason[:j], " (")+1 : j]
	} else {
		return nil
	}
	n := 0
	for n < len(id) && (id[n] >= '0' && id[n] <= '9' || id[n] >= 'A' && id[n] <= 'Z' || id[n] >= 'a' && id[n] <= 'z') {
		n++
	}
	if n == 0 {
		return nil
	}
	return id[:n]
}

// smtpdReject reads "RCPT from name[addr]: 554 5.7.1 <x@y>: Relay access
// denied; from=<a> to=<b> proto=ESMTP helo=<h>" (smtpd, postscreen,
// milters at SMTP time).
func smtpdReject(b []byte, ev *Event) Result {
	i := bytes.Index(b, []byte(" from "))
	if i < 0 {
		return Unparsed
	}
	stage, c := b[:i], b[i+len(" from "):]
	j := bytes.IndexByte(c, ']')
	if j < 0 {
		j = 0
	}
	k := bytes.Index(c[j:], []byte(": "))
	if k < 0 {
		return Unparsed
	}
	ev.Client = c[:j+k]
	if j > 0 {
		ev.Client = c[:j+1]
	}
	reply := c[j+k+2:]
	temporary(reply, ev)
	if f, ok := value(reply, "from=<", '>'); ok {
		ev.From = f
	}
	if t, ok := value(reply, "to=<", '>'); ok {
		ev.Addr = t
	}
	if e := bytes.Index(reply, []byte("; from=<")); e >= 0 {
		reply = reply[:e]
	}
	ev.Reason = replyText(reply)
	ev.Class = restriction(ev.Reason)
	if string(stage) == "END-OF-MESSAGE" {
		ev.Class = []byte("milter")
	}
	return HasEvent
}

// cleanupReject reads header/body checks, "header Subject: x from
// name[addr]; from=<a> to=<b> proto=SMTP helo=<h>: 5.7.1 text", and
// milter decisions, "END-OF-MESSAGE from name[addr]: 5.7.1 text; from=<a> ...".
func cleanupReject(b []byte, ev *Event) Result {
	what := upto(b, ' ')
	switch string(what) {
	case "header", "body":
		ev.Class = []byte(string(what) + "_checks")
		i := bytes.LastIndex(b, []byte("; from=<"))
		if i < 0 {
			return Unparsed
		}
		tail := b[i:]
		ev.From, _ = value(tail, "from=<", '>')
		ev.Addr, _ = value(tail, "to=<", '>')
		if f := bytes.LastIndex(b[:i], []byte(" from ")); f >= 0 {
			ev.Client = b[f+len(" from ") : i]
		}
		if k := bytes.Index(tail, []byte(">: ")); k >= 0 {
			temporary(tail[k+3:], ev)
			ev.Reason = replyText(tail[k+3:])
		} else {
			ev.Reason = b[:i]
		}
		return HasEvent
	}
	if smtpdReject(b, ev) != HasEvent {
		return Unparsed
	}
	ev.Class = []byte("milter")
	return HasEvent
}

// replyText drops the SMTP code, the enhanced status code and a leading
// "<address>: " from a reply.
func replyText(r []byte) []byte {
	if len(r) > 4 && r[0] >= '2' && r[0] <= '5' && r[3] == ' ' {
		r = r[4:]
	}
	if len(r) > 6 && (r[0] == '4' || r[0] == '5' || r[0] == '2') && r[1] == '.' {
		if i := bytes.IndexByte(r, ' '); i > 0 {
			r = r[i+1:]
		}
	}
	if len(r) > 0 && r[0] == '<' {
		if i := bytes.Index(r, []byte(">: ")); i > 0 {
			r = r[i+3:]
		}
	}
	return r
}

// restriction names the kind of a reject reason: "Relay access denied",
// "Recipient address rejected", "blocked using zen.spamhaus.org".
func restriction(reason []byte) []byte {
	if i := bytes.Index(reason, []byte("blocked using ")); i >= 0 {
		return upto(upto(reason[i:], ';'), ',')
	}
	if i := bytes.IndexAny(reason, ":;,("); i > 0 {
		return bytes.TrimSpace(reason[:i])
	}
	return reason
}
