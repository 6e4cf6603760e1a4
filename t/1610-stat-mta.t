# mf-stat on sendmail, qmail (multilog and splogger) and mf-bridge decision
# records written to their documented formats; expected numbers are worked
# out by hand from the logs in cmd/mf-stat/testdata, as the comments say.
. "$(dirname "$0")/lib.sh"
d=$top/cmd/mf-stat/testdata
S="mf-stat --now 2026-11-23T12:00:00Z --tz UTC"

# want FILE "name value ...": the totals named hold those values.
want() {
	bad=
	for kv in $2; do
		k=${kv%=*} v=${kv#*=}
		got=$(awk -F, -v k="$k" '$2 == k { print $1 }' "$tmp/out")
		[ "$got" = "$v" ] || bad="$bad $k=$got(want $v)"
	done
	[ -z "$bad" ] && ok "$1" || not_ok "$1" "$bad"
}

# sendmail: three messages received (alice, the null sender, root's local
# submission); the submission's copy handed to the MTA on 127.0.0.1
# ("5AMA05b0000111 Message accepted for delivery") is the same message, so
# it is "filtered", not received again. Delivered: bob and carol on one
# line, root locally, the DSN: 4. dave deferred once, then bounced.
# Rejected: check_rcpt, check_relay, the milter, and the RCPT-time "User
# unknown" of a session that queued nothing (nrcpts=0): 4.
run "$S --csv totals $d/sendmail.log"
want 'sendmail totals' 'received=3 delivered=4 deferred=1 deferrals=1 bounced=1 rejected=4 filtered=1 bytes_received=4500 bytes_delivered=2900'
run "$S --csv restrictions $d/sendmail.log"
check_grep 'sendmail rejects by ruleset' "$tmp/out" '^1,0,check_rcpt$'
check_grep 'sendmail milter rejects' "$tmp/out" '^1,0,milter$'
run "$S --csv reject-reasons $d/sendmail.log"
check_grep 'sendmail reject reason without the address' "$tmp/out" '^1,Relaying denied$'

# The sendmail lines of the real dump (a submission MSP handing to the MTA
# on 127.0.0.1, RCPT-time refusals, DSNs), and of sendmail.log, against
# the awk counts of t/stat/count-sendmail.sh.
gzip -dc "$d/postfix-maillog.gz" >"$tmp/maillog"
for log in "$tmp/maillog" "$d/sendmail.log"; do
	sh "$top/t/stat/count-sendmail.sh" "$log" | sort >"$tmp/want"
	run "$S --mta sendmail --csv totals $log"
	awk -F, 'NR > 1 { print $2, $1 }' "$tmp/out" | grep -E '^(received|delivered|deferrals|bounced|rejected|tempfailed) ' | sort >"$tmp/got"
	cmp -s "$tmp/got" "$tmp/want" && ok "sendmail in $(basename "$log"): totals match awk ($(tr '\n' ' ' <"$tmp/want"))" ||
		not_ok "sendmail in $(basename "$log"): totals match awk" "got: $(tr '\n' ' ' <"$tmp/got")" "want: $(tr '\n' ' ' <"$tmp/want")"
done

# qmail through multilog: msgs 1001 (2048 bytes, 2 deliveries) and 1002
# (512 bytes: a deferral, then a failure); a triple bounce discarded; one
# rblsmtpd refusal, a 451: tempfailed. Bytes delivered: 2 x 2048.
run "$S --csv totals $d/qmail.log"
want 'qmail totals' 'received=2 delivered=2 deferred=1 deferrals=1 bounced=1 rejected=0 tempfailed=1 discarded=1 bytes_received=2560 bytes_delivered=4096'
# tai64n: @400000006b02bd2a... is 2026-11-22 10:00:00 UTC (tai64nlocal's
# reading); msg 1002 bounced at 11:30.
run "$S --csv hours $d/qmail.log"
check_grep 'tai64n labels land in the right hour' "$tmp/out" '^10-11,2,2,1,0,0,0$'
check_grep 'the bounce an hour later' "$tmp/out" '^11-12,0,0,0,1,0,1$'
if command -v tai64nlocal >/dev/null; then
	h=$(head -1 "$d/qmail.log" | TZ=UTC tai64nlocal | cut -c12-13)
	[ "$h" = 10 ] && ok 'tai64nlocal agrees' || not_ok 'tai64nlocal agrees' "hour $h"
elif [ -n "${CI:-}" ]; then not_ok 'tai64nlocal agrees' 'daemontools missing (t/deps installs it)'
else skip 'tai64nlocal agrees' 'daemontools not installed (the hour above was worked out by hand)'
fi
run "$S --csv recipient-domains $d/qmail.log"
check_grep 'qmail delay from receipt to delivery: 5 s max for example.com' "$tmp/out" '^1,2048,0,5,5,example.com$'

# qmail through splogger: one message, one delivery.
run "$S --csv totals $d/splogger.log"
want 'qmail via splogger' 'received=1 delivered=1 bytes_received=700 bytes_delivered=700'

# mf-bridge decision records: 5 good lines, 2 bad (no time, unknown action).
run "$S --csv totals $d/mf-records.jsonl"
want 'mf records counted' 'decisions=5'
run "$S --csv verdicts $d/mf-records.jsonl"
check_grep 'lists continued twice' "$tmp/out" '^2,lists,continue$'
check_grep 'spam rejected once' "$tmp/out" '^1,spam,reject$'
run "$S --csv verdict-reasons $d/mf-records.jsonl"
check_grep 'a failed stage shows its error' "$tmp/out" '^1,scan,error: timeout after 30s$'
run "$S --csv decisions $d/mf-records.jsonl"
check_grep 'decisions per phase' "$tmp/out" '^1,rcpt,reject$'
run "$S --json --unparsed $tmp/bad $d/mf-records.jsonl"
[ "$(wc -l <"$tmp/bad")" = 2 ] && ok 'bad records are unparsed, not fatal' || not_ok 'bad records unparsed' "$(cat "$tmp/bad")"

# Everything at once, in one run: the totals add up.
run "$S --csv totals $d/sendmail.log $d/qmail.log $d/splogger.log $d/mf-records.jsonl"
want 'all formats mixed in one run' 'received=6 delivered=7 rejected=4 tempfailed=1 decisions=5'
run "$S --mta qmail --csv totals $d/sendmail.log $d/qmail.log $d/splogger.log"
want '--mta qmail counts qmail only' 'received=3 delivered=3'
done_testing
