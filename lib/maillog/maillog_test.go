package maillog

import (
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, line string) (Event, Result) {
	t.Helper()
	var ev Event
	r := NewParser(time.UTC, now).Parse([]byte(line), &ev)
	return ev, r
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		line                            string
		kind                            Kind
		mta                             MTA
		qid, client, from, addr, reason string
		class, next                     string
		size                            int64
		delay                           float64
	}{
		{line: "Feb 25 13:58:26 server1 postfix/pickup[29650]: AE11A4011B7B: uid=0 from=<root>", kind: Received, mta: Postfix, qid: "AE11A4011B7B", client: "pickup", from: "root", size: -1, delay: -1},
		{line: "Feb 25 13:58:26 server1 postfix/qmgr[18556]: AE11A4011B7B: from=<root@server1.alsoft.org>, size=299, nrcpt=1 (queue active)", kind: Queued, mta: Postfix, qid: "AE11A4011B7B", from: "root@server1.alsoft.org", size: 299, delay: -1},
		{line: "Aug 31 21:03:41 xxxxxxxx postfix/error[4830]: 345C33E31EB: to=<marco@xxxxxxxx.com>, relay=none, delay=80260, delays=80221/39/0/0.1, dsn=4.3.0, status=deferred (unknown mail transport error)", kind: Deferred, mta: Postfix, qid: "345C33E31EB", addr: "marco@xxxxxxxx.com", reason: "unknown mail transport error", size: -1, delay: 80260},
		{line: "2024-08-25T12:31:56.154748+00:00 machine postfix/smtpd[3887453]: NOQUEUE: reject: RCPT from unknown[192.168.1.1]: 454 4.7.1 <spammer@domain.tld>: Relay access denied; from=<spammer@domain.tld> to=<spammer@domain.tld> proto=ESMTP helo=<WIN-CLJ1B0GQ6JP>", kind: Tempfailed, mta: Postfix, client: "unknown[192.168.1.1]", from: "spammer@domain.tld", addr: "spammer@domain.tld", reason: "Relay access denied", class: "Relay access denied", size: -1, delay: -1},
		{line: "Nov 23 04:00:00 mx postfix/postscreen[10]: NOQUEUE: reject: RCPT from [192.0.2.7]:4567: 550 5.7.1 Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org; from=<a@b.example>, to=<c@d.example>, proto=ESMTP, helo=<x>", kind: Rejected, mta: Postfix, client: "[192.0.2.7]", from: "a@b.example", addr: "c@d.example", reason: "Service unavailable; client [192.0.2.7] blocked using zen.spamhaus.org", class: "blocked using zen.spamhaus.org", size: -1, delay: -1},
		{line: "Nov 23 04:00:00 mx postfix/cleanup[11]: 4BxYz1: milter-reject: END-OF-MESSAGE from mail.example.org[192.0.2.7]: 5.7.1 Spam; from=<alice@example.org> to=<bob@example.com> proto=ESMTP helo=<mail.example.org>", kind: Rejected, mta: Postfix, qid: "4BxYz1", client: "mail.example.org[192.0.2.7]", from: "alice@example.org", addr: "bob@example.com", reason: "Spam", class: "milter", size: -1, delay: -1},
		{line: "Nov 23 04:00:00 mx postfix/cleanup[11]: 4BxYz2: reject: header Subject: buy now from mail.example.org[192.0.2.7]; from=<alice@example.org> to=<bob@example.com> proto=ESMTP helo=<mail.example.org>: 5.7.1 No spam please", kind: Rejected, mta: Postfix, qid: "4BxYz2", client: "mail.example.org[192.0.2.7]", from: "alice@example.org", addr: "bob@example.com", reason: "No spam please", class: "header_checks", size: -1, delay: -1},
		{line: "Nov 23 04:00:00 mx postfix/cleanup[11]: 4BxYz3: hold: header X-Spam: yes from local; from=<a@b> to=<c@d>: held", kind: Held, mta: Postfix, qid: "4BxYz3", client: "local", from: "a@b", addr: "c@d", reason: "held", class: "header_checks", size: -1, delay: -1},
		{line: "Nov 23 04:00:01 mx postfix/smtp[12]: 4BxYz4: to=<bob@example.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=1.2, delays=0.1/0/0.1/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5CdEf6)", kind: Delivered, mta: Postfix, qid: "4BxYz4", addr: "bob@example.com", reason: "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5CdEf6", next: "5CdEf6", size: -1, delay: 1.2},
		{line: "Nov 23 04:00:01 mx postfix/smtp[12]: 4BxYz5: to=<bob@example.com>, relay=mx.example.com[198.51.100.1]:25, delay=0.5, status=sent (250 2.0.0 Ok: queued as 5CdEf7)", kind: Delivered, mta: Postfix, qid: "4BxYz5", addr: "bob@example.com", reason: "250 2.0.0 Ok: queued as 5CdEf7", size: -1, delay: 0.5},
		{line: "Nov 23 04:00:01 mx postfix/smtpd[13]: 5CdEf6: client=localhost[127.0.0.1], orig_queue_id=4BxYz4, orig_client=mail.example.org[192.0.2.7]", kind: Received, mta: Postfix, qid: "5CdEf6", client: "localhost[127.0.0.1]", next: "4BxYz4", size: -1, delay: -1},
		{line: "Nov 23 04:00:01 mx postfix/local[14]: 5CdEf8: to=<x@mx>, orig_to=<alias@mx>, relay=local, delay=0.1, status=sent (forwarded as 6AbCd1)", kind: Forwarded, mta: Postfix, qid: "5CdEf8", addr: "x@mx", reason: "forwarded as 6AbCd1", size: -1, delay: 0.1},
		{line: "Feb 26 12:27:16 server1 sendmail[6005]: 21QBRGdX006005: to=This, ctladdr=root (0/0), delay=00:00:00, xdelay=00:00:00, mailer=relay, pri=180030, relay=[127.0.0.1] [127.0.0.1], dsn=5.1.1, stat=User unknown", kind: Bounced, mta: Sendmail, qid: "21QBRGdX006005", addr: "This", reason: "User unknown", size: -1, delay: 0},
		{line: "Nov 22 10:00:01 mx sm-mta[100]: 5AMA01a0000100: from=<alice@example.org>, size=1200, class=0, nrcpts=2, msgid=<1@example.org>, proto=ESMTP, daemon=MTA, relay=mail.example.org [192.0.2.10]", kind: Received, mta: Sendmail, qid: "5AMA01a0000100", client: "mail.example.org [192.0.2.10]", from: "alice@example.org", size: 1200, delay: -1},
		{line: "Nov 22 10:02:00 mx sm-mta[105]: 5AMA02a0000105: ruleset=check_rcpt, arg1=<eve@elsewhere.example>, relay=spam.example [192.0.2.66], reject=550 5.7.1 <eve@elsewhere.example>... Relaying denied", kind: Rejected, mta: Sendmail, qid: "5AMA02a0000105", client: "spam.example [192.0.2.66]", addr: "eve@elsewhere.example", reason: "Relaying denied", class: "check_rcpt", size: -1, delay: -1},
		{line: "@400000006b02bd2a000003e8 info msg 1001: bytes 2048 from <alice@example.org> qp 500 uid 89", kind: Received, mta: Qmail, qid: "1001", client: "qmail", from: "alice@example.org", size: 2048, delay: -1},
		{line: "Nov 22 12:00:02 mx qmail: 1795348802.000000 delivery 9: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/", kind: Bounced, mta: Qmail, reason: "Sorry,_no_mailbox_here_by_that_name._(#5.1.1)", size: -1, delay: -1},
		{line: `{"__REALTIME_TIMESTAMP":"1795348800000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"7","MESSAGE":"4BxYz9: from=<a@example.org>, size=321, nrcpt=1 (queue active)"}`, kind: Queued, mta: Postfix, qid: "4BxYz9", from: "a@example.org", size: 321, delay: -1},
		{line: "@400000006b02bd2a000003e8 rblsmtpd: 192.0.2.99 pid 4242: 451 http://www.spamhaus.org/query/bl?ip=192.0.2.99", kind: Tempfailed, mta: Qmail, client: "192.0.2.99", reason: "http://www.spamhaus.org/query/bl?ip=192.0.2.99", class: "rblsmtpd", size: -1, delay: -1},
	} {
		ev, r := parse(t, c.line)
		if r != HasEvent {
			t.Errorf("%s: result %d, want an event", c.line, r)
			continue
		}
		got := []string{ev.Kind.String(), ev.MTA.String(), string(ev.QID), string(ev.Client), string(ev.From), string(ev.Addr), string(ev.Reason), string(ev.Class), string(ev.Next)}
		want := []string{c.kind.String(), c.mta.String(), c.qid, c.client, c.from, c.addr, c.reason, c.class, c.next}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s:\nfield %d = %q, want %q", c.line, i, got[i], want[i])
			}
		}
		if ev.Size != c.size || ev.Delay != c.delay {
			t.Errorf("%s: size %d delay %v, want %d %v", c.line, ev.Size, ev.Delay, c.size, c.delay)
		}
	}
}

func TestTimes(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	p := NewParser(berlin, time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC))
	for line, want := range map[string]string{
		"Dec 31 23:59:59 mx postfix/x[1]: y":                                 "2026-12-31T23:59:59+01:00",
		"Jan  1 00:00:01 mx postfix/x[1]: y":                                 "2027-01-01T00:00:01+01:00",
		"Jan  3 00:00:01 mx postfix/x[1]: y":                                 "2026-01-03T00:00:01+01:00", // after now: last year
		"2026-10-25T02:30:00+0100 mx postfix/x[1]: y":                        "2026-10-25T02:30:00+01:00", // journalctl -o short-iso
		"2026-10-25T00:30:00.5Z mx postfix/x[1]: y":                          "2026-10-25T02:30:00+02:00",
		"<22>1 2026-10-25T00:30:00Z mx postfix/smtp 7 - - y":                 "2026-10-25T02:30:00+02:00",
		"@400000006b02bd2a00000000 new msg 1":                                "2026-11-22T11:00:00+01:00",
		`{"time":"2026-11-23T04:45:18.5Z","phase":"data","action":"accept"}`: "2026-11-23T05:45:18+01:00",
	} {
		got, ok := p.Time([]byte(line))
		if !ok || got.In(berlin).Format(time.RFC3339) != want {
			t.Errorf("%s: %v %v, want %s", line, got.In(berlin).Format(time.RFC3339), ok, want)
		}
	}
}

func TestNotEvents(t *testing.T) {
	for line, want := range map[string]Result{
		"":                                Unparsed,
		"[20-Oct-2020 14:56:10 +0100]: x": Unparsed,
		"Feb 25 13:58:26 server1 dovecot: imap-login: x":                                                Foreign,
		"Feb 25 13:58:26 server1 postfix/smtpd[1]: connect from unknown[1.2.3.4]":                       Known,
		"Feb 25 13:58:26 server1 postfix/smtp[1]: AB12345: to=<a@b>, relay=":                            Unparsed,
		"Feb 25 13:58:26 server1 postfix/qmgr[1]: AB12345: from=<>, status=expired, returned to sender": Known,
		"@4000000063a1b2c3zzzzzzzz new msg 1":                                                           Unparsed,
		`{"time":"2026-11-23T04:45:18.5Z","phase":"data","action":"maybe"}`:                             Unparsed,
		"Feb 30 99:58:26 server1 postfix/smtpd[1]: AB12345: client=x[1.2.3.4]":                          Unparsed,
	} {
		if _, r := parse(t, line); r != want {
			t.Errorf("%q: result %d, want %d", line, r, want)
		}
	}
}

// Lines the first parsers got wrong on logs they had never seen: each is
// the event it stands for, or no event at all.
func TestOutcomes(t *testing.T) {
	for _, c := range []struct {
		line         string
		kind         Kind
		class, other string // Class, and Reason (or the sender for receipts)
	}{
		{"Mar 15 09:33:43 mx postfix/amavis/smtp[3004]: 4Pc3ZX1jFxz3tBr: to=<u@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=3.2, delays=0.44/0.02/0.01/2.7, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=351462-17 - BANNED: .exe,Purchase Order.scr)", Discarded, "", "BANNED: .exe,Purchase Order.scr"},
		{"Jan  5 00:13:30 mx sm-mta[12023]: jB88DJCg012023: to=<b@example.org>, delay=00:00:03, pri=100624, stat=Virus Worm.Mytob.IC found in mail - rejected", None, "", ""},
		{"Jan  5 00:13:32 mx sm-mta[10779]: jB86DKfv010779: to=<d@example.org>, delay=02:00:00, pri=570085, stat=timeout waiting for input during message collect", None, "", ""},
		{"Dec  1 10:00:01 mx sm-mta[10110]: 6B1AQuIR010110: to=<u1@example.org>, delay=00:00:00, mailer=local, pri=30051, quarantine=held for review, stat=quarantined", None, "", ""},
		{"Dec  1 10:00:01 mx sm-mta[10110]: 6B1AQuIR010110: milter=mf, quarantine=held for review", Held, "milter", "held for review"},
		{"Dec  1 10:00:03 mx sm-mta[10112]: 6B1AQwTF010112: Milter: data, reject=451 4.7.1 Try again later", Tempfailed, "milter", "Try again later"},
		{"Dec  1 10:00:03 mx sm-mta[10112]: 6B1AQwTF010112: milter=mf, reject=451 4.7.1 Try again later", None, "", ""},
		{"Dec  1 10:00:02 mx sm-mta[10111]: 6B1AQvDD010111: Milter: data, discard", Discarded, "milter", "milter"},
		{"Dec  1 10:00:02 mx sm-mta[10111]: 6B1AQvDD010111: to=<u2@example.org>, delay=00:00:00, pri=30048, stat=discarded", None, "", ""},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010115: to=<x@example.net>, delay=5+00:00:00, mailer=esmtp, pri=1, relay=mx.example.net, dsn=4.4.7, stat=Cannot send message for 5 days", Bounced, "", "Cannot send message for 5 days"},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010116: SYSERR(root): collect: Cannot write ./dfxyz (bfcommit, uid=0, gid=25): No space left on device", Problem, "syserr", "collect: Cannot write ./dfxyz (bfcommit, uid=0, gid=25): No space left on device"},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010117: Milter (mf): to error state", Problem, "milter error", "Milter (mf): to error state"},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010120: Milter (mf): filter in error state, rejecting", Problem, "milter error", "Milter (mf): filter in error state, rejecting"},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010118: milter_write(mf): write(6) returned -1, expected 14: Broken pipe", Problem, "milter error", "milter_write(mf): write(6) returned -1, expected 14: Broken pipe"},
		{"Dec  1 10:00:05 mx sm-mta[1]: 6B1AQvDD010119: rejecting commands from client.example [192.0.2.1] due to pre-greeting traffic after 0 seconds", Problem, "pre-greeting traffic", "rejecting commands from client.example [192.0.2.1] due to pre-greeting traffic after 0 seconds"},
		{"Jul 15 10:00:00 mx postfix/smtpd[2001]: fatal: open database /etc/postfix/virtual.db: No such file or directory", Problem, "fatal", "open database /etc/postfix/virtual.db: No such file or directory"},
		{"Jul 15 10:00:02 mx postfix/qmgr[3]: panic: myfree: corrupt or unallocated memory block", Problem, "panic", "myfree: corrupt or unallocated memory block"},
		{"Jul 15 10:00:02 mx mf-bridge[9]: mf-bridge: error: accept: too many open files", Problem, "error", "accept: too many open files"},
		{"@400000006b02bd2d00001388 delivery 2: success: did_0+1+0/", Forwarded, "", "did_0+1+0"},
		{"@400000006b02bd2d00001388 delivery 2: success: did_1+0+0/", Delivered, "", "did_1+0+0"},
		{"@400000006b02d49a00003e80 triple bounce: discarding bounce/1003", Discarded, "triple bounce", "triple bounce"},
		{"@400000006b02d49a00003e80 alert: unable to append to bounce message; HELP! sleeping...", Problem, "alert", "unable to append to bounce message; HELP! sleeping..."},
	} {
		ev, r := parse(t, c.line)
		if c.kind == None {
			if r == HasEvent {
				t.Errorf("%s: %s, want no event", c.line, ev.Kind)
			}
			continue
		}
		if r != HasEvent || ev.Kind != c.kind || string(ev.Class) != c.class || string(ev.Reason) != c.other {
			t.Errorf("%s:\n%d %s %q %q, want %s %q %q", c.line, r, ev.Kind, ev.Class, ev.Reason, c.kind, c.class, c.other)
		}
	}
	ev, _ := parse(t, "@400000006b02bd2a000003e8 info msg 1003: bytes 300 from <#@[]> qp 9 uid 89")
	if ev.Kind != Received || len(ev.From) != 0 {
		t.Errorf("double-bounce sender: %s %q, want a receipt from <>", ev.Kind, ev.From)
	}
	ev, r := parse(t, "2026-11-22 10:00:00.123456789 info msg 123: bytes 5 from <a@b> qp 1 uid 2")
	if r != HasEvent || ev.Kind != Received || ev.Time.Format(time.RFC3339Nano) != "2026-11-22T10:00:00.123456789Z" || string(ev.Prog) != "qmail" {
		t.Errorf("tai64nlocal line: %d %s %v", r, ev.Kind, ev.Time)
	}
}
