#!/bin/sh
# Counts a classic-syslog Postfix log with grep and awk alone, as the
# independent check of mf-stat's grand totals (t/1600-stat-postfix.t).
# Rules, each on lines counted once however often they repeat:
#   received   smtpd/postscreen "QID: client=" and pickup "QID: uid=|sender=",
#              minus receipts whose queue id a loopback relay reported
#              "queued as" (a content filter's re-injection)
#   delivered  "status=sent" without "forwarded as", minus those hand-offs
#   deferrals  "status=deferred"; deferred: their distinct queue ids
#   bounced    "status=bounced"
#   rejected   smtpd/postscreen/cleanup "reject:" and "milter-reject:"
# Prints "name value" lines.
awk '!seen[$0]++' "$@" | awk '
$5 !~ /^postfix/ { next }
{ qid = $6; sub(/:$/, "", qid) }
($5 ~ /^postfix\/(.*\/)?(smtpd|postscreen)\[/ && $7 ~ /^client=/) || ($5 ~ /^postfix\/pickup\[/ && $7 ~ /^(uid|sender)=/) { rcvd[qid]++ }
/status=sent/ && !/forwarded as / {
	if ($0 ~ /relay=[^,]*\[(127\.|::1\])/ && match($0, /queued as [0-9A-Za-z]+/)) { again[substr($0, RSTART + 10, RLENGTH - 10)] = 1; next }
	delivered++
}
/status=deferred/ { deferrals++; dq[qid] = 1 }
/status=bounced/ { bounced++ }
$5 ~ /^postfix\/(.*\/)?(smtpd|postscreen|cleanup)\[/ && / (milter-)?reject: / { rejected++ }
END {
	for (q in rcvd) if (!(q in again)) received += rcvd[q]
	for (q in dq) deferred++
	printf "received %d\ndelivered %d\ndeferred %d\ndeferrals %d\nbounced %d\nrejected %d\n", received, delivered, deferred, deferrals, bounced, rejected
}'
