#!/bin/sh
# Counts the sendmail lines of a classic-syslog log with awk alone, the
# independent check of mf-stat --mta sendmail (t/1610-stat-mta.t). Rules,
# on lines counted once however often they repeat:
#   received   "QID: from=... size=" lines but those with nrcpts=0 and
#              those of a copy handed on (below): the same message again
#   delivered  recipients (commas in to=) of "stat=Sent" lines, but
#              hand-offs to a loopback relay that name the copy's queue id
#              ("queued as ID", "ID Message accepted for delivery")
#   deferrals  "stat=Deferred" lines
#   bounced    recipients of to= lines with any other stat but "queued"
#   rejected   "ruleset=... reject=", "Milter: ... reject=", and
#              "<addr>... reason" lines of a queue id with no from= yet
awk '!seen[$0]++' "$@" | awk '
$5 !~ /^(sendmail|sm-mta|sm-msp-queue)\[/ { next }
{ qid = $6; sub(/:$/, "", qid); rest = $0; sub(/^[^]]*\]: [^ ]+ /, "", rest) }
rest ~ /^from=/ && rest ~ /size=/ { if (rest !~ /, nrcpts=0,/) rcvd[qid]++; from[qid] = 1; next }
rest ~ /^to=/ {
	list = rest; sub(/^to=/, "", list); sub(/, .*/, "", list); n = split(list, a, ",")
	if (rest ~ /stat=Sent/) {
		if (rest ~ /relay=[^,]*\[(127\.|::1\])/) {
			if (match(rest, /queued as [0-9A-Za-z]+/)) { again[substr(rest, RSTART + 10, RLENGTH - 10)] = 1; next }
			if (match(rest, /[0-9A-Za-z]+ Message accepted for delivery/)) { again[substr(rest, RSTART, RLENGTH - 30)] = 1; next }
		}
		delivered += n
	} else if (rest ~ /stat=Deferred/) deferrals += n
	else if (rest !~ /stat=queued/) bounced += n
	next
}
rest ~ /^ruleset=.*reject=/ || rest ~ /^Milter.*reject=/ { rejected++; next }
rest ~ /^<[^>]*>\.\.\. / && !(qid in from) { rejected++ }
END {
	for (q in rcvd) if (!(q in again)) received += rcvd[q]
	printf "received %d\ndelivered %d\ndeferrals %d\nbounced %d\nrejected %d\n", received, delivered, deferrals, bounced, rejected }'
