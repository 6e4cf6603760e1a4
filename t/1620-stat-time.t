# Time: days and hours in --tz across a DST change, "yesterday" as the
# calendar day (25 hours long here), syslog's missing year at New Year.
. "$(dirname "$0")/lib.sh"
d=$top/cmd/mf-stat/testdata
B="mf-stat --tz Europe/Berlin --now 2026-10-26T09:00:00+01:00"

# dst.log: six rejects at 21:30, 22:30 (Oct 24), 00:30, 01:30, 22:30 and
# 23:30 (Oct 25) UTC. Summer time ends on Oct 25 at 01:00 UTC, when
# 03:00 CEST becomes 02:00 CET: in Berlin they are 23:30 (24th), 00:30,
# 02:30 CEST, 02:30 CET, 23:30 (25th) and 00:30 (26th).
check_out 'days in Berlin time' 'date,received,delivered,deferrals,bounced,rejected,tempfailed
2026-10-24,0,0,0,0,1,0
2026-10-25,0,0,0,0,4,0
2026-10-26,0,0,0,0,1,0' "$B --csv days $d/dst.log"
run "$B --csv hours $d/dst.log"
check_grep 'the hour that happened twice holds both' "$tmp/out" '^02-03,0,0,0,0,2,0$'
check_grep '23:30 twice (both days)' "$tmp/out" '^23-24,0,0,0,0,2,0$'
check_grep '00:30 twice' "$tmp/out" '^00-01,0,0,0,0,2,0$'
# Yesterday is Oct 25 00:00 CEST to Oct 26 00:00 CET, 25 hours: four
# rejects; 24 hours back from midnight would lose the one at 00:30 CEST.
run "$B --day yesterday --csv totals $d/dst.log"
check_grep 'yesterday across the DST change: 4 rejects' "$tmp/out" '^4,rejected$'
run "$B --since 2026-10-25 --until 2026-10-25 --csv totals $d/dst.log"
check_grep 'a date range of one day is the same' "$tmp/out" '^4,rejected$'
run "$B --day 2026-10-24..2026-10-25 --csv totals $d/dst.log"
check_grep 'a range of days: Oct 24 and 25' "$tmp/out" '^5,rejected$'
run "$B --since '2026-10-25 01:00' --until '2026-10-25 23:00' --csv totals $d/dst.log"
check_grep 'times in --tz' "$tmp/out" '^2,rejected$'
run "$B --since=-1d --csv totals $d/dst.log"
check_grep '-1d counts back a calendar day from --now' "$tmp/out" '^2,rejected$'
run "mf-stat --tz UTC --now 2026-10-26T09:00:00Z --day yesterday --csv hours $d/dst.log"
check_grep 'yesterday in UTC is another day: it has 23:30 UTC' "$tmp/out" '^23-24,0,0,0,0,1,0$'
check_refused 'an empty range is an error' 'not after' "$B --since today --until yesterday $d/dst.log"
check_refused 'an unknown zone is an error' 'tz' "$B --tz Mars/Olympus $d/dst.log"

# Classic syslog has no year: lines not after --now (a day's grace) are
# this year, later ones last year; New Year inside one log.
printf '%s\n' \
	'Dec 31 23:59:59 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Service unavailable; from=<a@b> to=<c@d> proto=ESMTP helo=<x>' \
	'Jan  1 00:00:01 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.2]: 554 5.7.1 Service unavailable; from=<a@b> to=<c@d> proto=ESMTP helo=<x>' >"$tmp/ny.log"
run "mf-stat --tz UTC --now 2027-01-01T08:00:00Z --csv days $tmp/ny.log"
check_grep 'Dec 31 is last year' "$tmp/out" '^2026-12-31,0,0,0,0,1,0$'
check_grep 'Jan 1 is this year' "$tmp/out" '^2027-01-01,0,0,0,0,1,0$'
done_testing
