# What mf-stat(1) claims, measured: where its totals differ from
# pflogsumm's and why, and its memory at the default bounds on a
# sendmail log whose messages stay open (every one deferred, none
# delivered; sendmail logs no removal).
. "$(dirname "$0")/lib.sh"
S="mf-stat --now 2026-11-23T12:00:00Z --tz UTC"
man=$top/man/mf-stat.1

# pflogsumm misses smtpd's "NOQUEUE: milter-reject: RCPT" refusals and
# counts 4xx refusals among its rejects.
cat >"$tmp/mr.log" <<'L'
Nov 23 10:00:00 mx postfix/smtpd[7]: NOQUEUE: milter-reject: RCPT from unknown[192.0.2.1]: 550 5.7.1 Recipient blocked; from=<s@example.org> to=<u@example.com> proto=ESMTP helo=<x>
Nov 23 10:00:01 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@example.com>: Relay access denied; from=<s@example.org> to=<v@example.com> proto=ESMTP helo=<x>
Nov 23 10:00:02 mx postfix/cleanup[8]: 4BxYz1: milter-reject: END-OF-MESSAGE from mail.example.org[192.0.2.7]: 5.7.1 Spam; from=<alice@example.org> to=<bob@example.com> proto=ESMTP helo=<mail.example.org>
Nov 23 10:00:03 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 450 4.7.1 <w@example.com>: Recipient address rejected: greylisted; from=<s@example.org> to=<w@example.com> proto=ESMTP helo=<x>
L
run "$S --csv totals $tmp/mr.log"
r=$(awk -F, '$2 == "rejected" { print $1 }' "$tmp/out"); t=$(awk -F, '$2 == "tempfailed" { print $1 }' "$tmp/out")
[ "$r" = 3 ] && [ "$t" = 1 ] && ok 'mf-stat: 3 rejected (milter at RCPT, reject, milter at data), 1 tempfailed' || not_ok 'mf-stat refusals' "rejected $r tempfailed $t"
if need pflogsumm pflogsumm; then
	p=$(pflogsumm "$tmp/mr.log" 2>/dev/null | awk '/^ *[0-9]+ +rejected/ { print $1 }')
	[ "$p" = 3 ] && ok 'pflogsumm: 3 rejected (the 4xx among them, the milter-reject at RCPT missed)' || not_ok 'pflogsumm rejects as the man page says' "pflogsumm $p"
fi
check_grep 'the man page says so' "$man" 'milter-reject: RCPT'

# Memory: a sendmail log of 300000 messages, each deferred and never
# delivered, more than the default --max-messages (65536) at once.
awk 'BEGIN { for (i = 0; i < 300000; i++) {
	s = 1000 + int(i / 10); h = int(s / 3600); m = int(s / 60) % 60; x = s % 60
	t = sprintf("Nov 22 %02d:%02d:%02d", h % 24, m, x)
	printf "%s mx sm-mta[%d]: 6BM%06X%05d: from=<sender%d@example.net>, size=%d, class=0, nrcpts=1, msgid=<%d@example.net>, proto=ESMTP, daemon=MTA, relay=c%d.example.net [198.51.100.%d]\n", t, 1000 + i % 30000, i, i % 100000, i, 2000 + i % 9000, i, i, i % 250
	printf "%s mx sm-mta[%d]: 6BM%06X%05d: to=<rcpt%d@d%d.example.com>, delay=00:00:30, xdelay=00:00:30, mailer=esmtp, pri=%d, relay=d%d.example.com., dsn=4.0.0, stat=Deferred: Connection timed out with d%d.example.com.\n", t, 1000 + i % 30000, i, i % 100000, i, i % 700, 120000 + i, i % 700, i % 700
} }' >"$tmp/open.log"
if [ -x /usr/bin/time ]; then
	rss() { /usr/bin/time -f %M mf-stat --config /dev/null --now 2026-11-23T12:00:00Z --tz UTC "$@" "$tmp/open.log" 2>&1 >/dev/null | tail -1; }
	big=$(rss)
	[ "$big" -le 65536 ] && ok "peak RSS at the default bounds: $((big / 1024)) MiB (at most 64)" || not_ok 'peak RSS within 64 MiB' "$big KiB"
	check_grep 'mf-stat(1) says 64 MiB' "$man" 'within 64 MiB'
	json=$(mf-stat --now 2026-11-23T12:00:00Z --tz UTC --json "$tmp/open.log")
	echo "$json" | grep -q '"messages_let_go": [1-9]' && ok 'beyond the bound messages are let go, and counted' || not_ok 'messages let go' "$(echo "$json" | grep let_go)"
	echo "$json" | grep -q '"received": 300000,' && ok 'every receipt counted all the same' || not_ok 'receipts counted' "$(echo "$json" | grep '"received"')"
else
	skip 'peak RSS' '/usr/bin/time (package time) missing'
fi
# The heap a followed message costs is measured by TestMessageCost
# (lib/summary); the man page states that test's bound.
want=$(sed -n 's/^const messageCost = \([0-9]*\)$/\1/p' "$top/lib/summary/summary_test.go")
got=$(sed -n 's/.*at most about \([0-9]*\) bytes each.*/\1/p' "$man")
[ -n "$want" ] && [ "$got" = "$want" ] && ok "mf-stat(1) states the $want bytes per message TestMessageCost checks" || not_ok 'man page figure is the tested one' "page '$got', test '$want'"
done_testing
