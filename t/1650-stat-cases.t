# mf-stat on the cases summarizers get wrong (../shared/data/stat-cases,
# whose README gives the right totals, read off the lines), and on the
# qmail, JSON and overlong-line cases of issue 15.
. "$(dirname "$0")/lib.sh"
c=$top/../shared/data/stat-cases
S="mf-stat --now 2026-12-01T23:00:00Z --tz UTC"

# want DESC "name=value ...": the totals of the last run hold those values.
want() {
	bad=
	for kv in $2; do
		k=${kv%=*} v=${kv#*=}
		got=$(awk -F, -v k="$k" '$2 == k { print $1 }' "$tmp/out")
		[ "$got" = "$v" ] || bad="$bad $k=$got(want $v)"
	done
	[ "$rc" = 0 ] && [ -z "$bad" ] && ok "$1" || not_ok "$1" "exit $rc:$bad" "$(head -3 "$tmp/err")"
}

if [ ! -d "$c" ]; then
	not_ok 'stat cases present' "no $c"
	done_testing
	exit
fi
run "$S --csv totals $c/postfix-reinject-late-handoff.log"
want 'content filter copy whose hand-off is logged after its removal: one message' 'received=1 bytes_received=1000 delivered=1 filtered=1'
run "$S --csv totals $c/postfix-loopback-relay.log"
want 'relay to an MTA on 127.0.0.1 whose copy is not in the log: a delivery' 'received=1 delivered=1 filtered=0'
run "$S --csv totals $c/postfix-amavis-discard.log"
want 'amavisd "Ok, discarded" is a discard' 'received=1 delivered=0 discarded=1'
run "$S --csv totals $c/postfix-problems.log"
want 'warnings, fatals and panics are problems, not messages' 'received=0 problems=5'
run "$S --csv problems $c/postfix-problems.log"
check_grep 'one fatal (smtpd)' "$tmp/out" '^1,2026-07-15 10:00:00,2026-07-15 10:00:00,postfix/smtpd,fatal,open database /etc/postfix/virtual.db'
check_grep 'one panic (qmgr)' "$tmp/out" '^1,[^,]*,[^,]*,postfix/qmgr,panic,myfree'
check_grep 'two milter warnings, called out, first and last time' "$tmp/out" '^2,2026-07-15 10:00:03,2026-07-15 10:00:04,postfix/smtpd,warning \(milter\),'
check_grep 'and the other warning' "$tmp/out" '^1,[^,]*,[^,]*,postfix/master,warning,process '
run "$S --csv totals $c/sendmail-not-bounces.log"
want 'sendmail: a milter reject at data and a collect timeout are no bounces' 'received=2 bounced=0 rejected=1'
run "$S --csv totals $c/sendmail-milter-outcomes.log"
want 'sendmail milter outcomes: quarantine held, discard, tempfail at data, reject at RCPT' 'received=3 held=1 discarded=1 tempfailed=1 rejected=1 delivered=0 bounced=0'
# The independent awk count agrees on both.
for f in sendmail-not-bounces sendmail-milter-outcomes; do
	sh "$top/t/stat/count-sendmail.sh" "$c/$f.log" >"$tmp/awk"
	run "$S --csv totals $c/$f.log"
	bad=
	while read -r k v; do
		got=$(awk -F, -v k="$k" '$2 == k { print $1 }' "$tmp/out")
		[ "$got" = "$v" ] || bad="$bad $k=$got(awk $v)"
	done <"$tmp/awk"
	[ -z "$bad" ] && ok "$f: awk count agrees ($(tr '\n' ' ' <"$tmp/awk"))" || not_ok "$f: awk count agrees" "$bad"
done
check_grep 'awk: no bounce in sendmail-not-bounces' "$tmp/awk" '^bounced 0$'

# qmail: a forward counts once (the copy is no new receipt), a delivery
# whose start came before the log's first line is counted, the triple
# bounce has its reason, the double-bounce sender #@[] is the null sender.
q=$top/t/stat/qmail-forward.log
run "$S --csv totals $q"
want 'qmail forward: forwarded once, the copy not received again' 'received=2 forwarded=1 delivered=2 bytes_received=1300 bytes_delivered=1100 discarded=1'
run "$S --json $q"
check_grep 'the delivery with no start is counted and reported' "$tmp/out" '"outcomes_of_unknown_deliveries": 1'
run "$S --csv discarded $q"
check_grep 'triple bounce row has its reason' "$tmp/out" '^1,triple bounce$'
run "$S --csv sender-domains $q"
check_nogrep 'no sender domain []' "$tmp/out" ',\[\]$'
# tai64nlocal's output reads like multilog's labels.
if need tai64nlocal daemontools; then
	TZ=UTC tai64nlocal <$q >"$tmp/local.log"
	grep -q '^2026-11-22 10:00:00.000000000 new msg 2001$' "$tmp/local.log" || not_ok 'tai64nlocal wrote what is expected' "$(head -2 "$tmp/local.log")"
	run "$S --csv totals $q"; cp "$tmp/out" "$tmp/tai"
	check 'tai64nlocal output gives the same totals' "$S --csv totals $tmp/local.log | cmp - $tmp/tai"
else skip 'tai64nlocal output gives the same totals' 'daemontools not installed'; fi

# JSON: an empty table is [], so jq '.tables[].rows[]' works on any log.
run "$S --json $c/postfix-problems.log"
if need jq jq; then
	check 'jq .tables[].rows[] works when tables are empty' "jq -e '.tables[] | select(.name == \"held\") | .rows == []' $tmp/out"
else
	check_grep 'empty rows are []' "$tmp/out" '"rows": \[\]'
fi
check_nogrep 'no rows: null' "$tmp/out" '"rows": null'

# One meaning per word: per-day deferrals are attempts, "deferred"
# messages; recipient domains are those delivered to.
cat >"$tmp/defer.log" <<'L'
Nov 23 10:00:00 mx postfix/smtpd[1]: 4AAAA00001: client=a.example[192.0.2.1]
Nov 23 10:00:00 mx postfix/qmgr[2]: 4AAAA00001: from=<a@a.example>, size=100, nrcpt=2 (queue active)
Nov 23 10:00:01 mx postfix/smtp[3]: 4AAAA00001: to=<x@slow.example>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect timeout)
Nov 23 10:10:01 mx postfix/smtp[3]: 4AAAA00001: to=<x@slow.example>, relay=none, delay=601, dsn=4.4.1, status=deferred (connect timeout)
Nov 23 10:10:02 mx postfix/smtp[3]: 4AAAA00001: to=<y@fast.example>, relay=mx.fast.example[198.51.100.1]:25, delay=2, dsn=2.0.0, status=sent (250 ok)
L
run "mf-stat --now 2026-11-23T12:00:00Z --tz UTC --csv totals $tmp/defer.log"
want 'deferred 1 message, 2 deferrals; 1 recipient domain (delivered to)' 'deferred=1 deferrals=2 recipients=1 recipient_domains=1'
run "mf-stat --now 2026-11-23T12:00:00Z --tz UTC --csv days $tmp/defer.log"
check_grep 'per-day column is deferrals, and counts the 2 attempts' "$tmp/out" '^date,received,delivered,deferrals,bounced,rejected,tempfailed$'
check_grep '... 2026-11-23 has 2' "$tmp/out" '^2026-11-23,1,1,2,0,0,0$'

# A line longer than 16 MiB is one line read and one unparsed, not pieces.
{ head -c 17000000 /dev/zero | tr '\0' x; echo; cat "$tmp/defer.log"; } >"$tmp/long.log"
run "mf-stat --now 2026-11-23T12:00:00Z --tz UTC --json --unparsed $tmp/long.unparsed $tmp/long.log"
check_grep 'overlong line: 6 lines read' "$tmp/out" '"read": 6,'
check_grep '... 1 unparsed' "$tmp/out" '"unparsed": 1,'
check_grep '... and the rest counted' "$tmp/out" '"delivered": 1,'
[ "$(wc -l <"$tmp/long.unparsed")" = 1 ] && ok '--unparsed has it as one cut line' || not_ok '--unparsed has one line' "$(wc -l <"$tmp/long.unparsed")"
done_testing
