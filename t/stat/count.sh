#!/bin/sh
# Counts a classic-syslog Postfix log with grep and awk alone, as the
# independent check of mf-stat's grand totals (t/1600-stat-postfix.t).
# Rules, each on lines counted once however often they repeat:
#   received   smtpd/postscreen "QID: client=" and pickup "QID: uid=|sender=",
#              minus receipts whose queue id a loopback relay reported
#              "queued as" (a content filter's re-injection)
#   delivered  "status=sent" without "forwarded as" or amavisd's "Ok,
#              discarded", minus those hand-offs; a hand-off whose "queued
#              as" id never appears as a queue id in the log went to
#              another MTA and is a delivery
#   deferrals  "status=deferred"; deferred: their distinct queue ids
#   bounced    "status=bounced"
#   rejected   smtpd/postscreen/cleanup "reject:" and "milter-reject:"
#              with a 5xx reply; tempfailed: those with a 4xx reply
# Prints "name value" lines.
awk '!seen[$0]++' "$@" | awk '
$5 !~ /^postfix/ { next }
{ qid = $6; sub(/:$/, "", qid); ids[qid] = 1 }
($5 ~ /^postfix\/(.*\/)?(smtpd|postscreen)\[/ && $7 ~ /^client=/) || ($5 ~ /^postfix\/pickup\[/ && $7 ~ /^(uid|sender)=/) { rcvd[qid]++ }
/status=sent/ && !/forwarded as / && !/relay=[^,]*\[(127\.|::1\]).* Ok, discarded/ {
	if ($0 ~ /relay=[^,]*\[(127\.|::1\])/ && match($0, /queued as [0-9A-Za-z]+/)) { handoff[++nh] = substr($0, RSTART + 10, RLENGTH - 10); next }
	delivered++
}
/status=deferred/ { deferrals++; dq[qid] = 1 }
/status=bounced/ { bounced++ }
$5 ~ /^postfix\/(.*\/)?(smtpd|postscreen|cleanup)\[/ && / (milter-)?reject: / {
	code = ""
	if (match($0, /\]: [245][0-9][0-9] /)) code = substr($0, RSTART + 3, 1)
	else if (match($0, /: [245]\.[0-9]+\.[0-9]+ /)) code = substr($0, RSTART + 2, 1)
	if (code == "4") tempfailed++; else rejected++
}
END {
	for (i = 1; i <= nh; i++) if (handoff[i] in ids) again[handoff[i]] = 1; else delivered++
	for (q in rcvd) if (!(q in again)) received += rcvd[q]
	for (q in dq) deferred++
	printf "received %d\ndelivered %d\ndeferred %d\ndeferrals %d\nbounced %d\nrejected %d\ntempfailed %d\n", received, delivered, deferred, deferrals, bounced, rejected, tempfailed
}'
