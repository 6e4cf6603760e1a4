#!/bin/sh
# Counts the sendmail lines of a classic-syslog log with awk alone, the
# independent check of mf-stat --mta sendmail (t/1610-stat-mta.t). Rules,
# on lines counted once however often they repeat:
#   received   "QID: from=... size=" lines but those with nrcpts=0 and
#              those of a copy handed on (below): the same message again
#   delivered  recipients (commas in to=) of "stat=Sent" lines, but
#              hand-offs to a loopback relay that name the copy's queue id
#              ("queued as ID", "ID Message accepted for delivery") when
#              that id appears in the log (else the relay was another MTA)
#   deferrals  "stat=Deferred" lines
#   bounced    recipients of to= lines of a failed delivery: a 5.x.x dsn=,
#              or "stat=Cannot send message"; a to= line without either
#              (a milter's reject, a timeout in collect, quarantined,
#              discarded, queued) is no bounce
#   rejected   "ruleset=... reject=5", "Milter: ... reject=5" and
#              "<addr>... reason" lines of a queue id with no from= yet;
#              tempfailed: "ruleset=... reject=4", "Milter: ... reject=4"
awk '!seen[$0]++' "$@" | awk '
$5 !~ /^(sendmail|sm-mta|sm-msp-queue)\[/ { next }
{ qid = $6; sub(/:$/, "", qid); ids[qid] = 1; rest = $0; sub(/^[^]]*\]: [^ ]+ /, "", rest) }
rest ~ /^from=/ && rest ~ /size=/ { if (rest !~ /, nrcpts=0,/) rcvd[qid]++; from[qid] = 1; next }
rest ~ /^to=/ {
	list = rest; sub(/^to=/, "", list); sub(/, .*/, "", list); n = split(list, a, ",")
	if (rest ~ /stat=Sent/) {
		if (rest ~ /relay=[^,]*\[(127\.|::1\])/) {
			if (match(rest, /queued as [0-9A-Za-z]+/)) { hid[++nh] = substr(rest, RSTART + 10, RLENGTH - 10); hn[nh] = n; next }
			if (match(rest, /[0-9A-Za-z]+ Message accepted for delivery/)) { hid[++nh] = substr(rest, RSTART, RLENGTH - 30); hn[nh] = n; next }
		}
		delivered += n
	} else if (rest ~ /stat=Deferred/) deferrals += n
	else if (rest ~ /, dsn=5\./ || rest ~ /stat=Cannot send message/) bounced += n
	next
}
rest ~ /^ruleset=.*reject=/ || rest ~ /^Milter: .*reject=/ { r = rest; sub(/.*reject=/, "", r); if (r ~ /^4/) tempfailed++; else rejected++; next }
rest ~ /^<[^>]*>\.\.\. / && !(qid in from) { rejected++ }
END {
	for (i = 1; i <= nh; i++) if (hid[i] in ids) again[hid[i]] = 1; else delivered += hn[i]
	for (q in rcvd) if (!(q in again)) received += rcvd[q]
	printf "received %d\ndelivered %d\ndeferrals %d\nbounced %d\nrejected %d\ntempfailed %d\n", received, delivered, deferrals, bounced, rejected, tempfailed }'
