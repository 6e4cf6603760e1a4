# Cron mode joins across runs: a log fed to mf-stat --offsets ten lines
# at a time (a line at a time for short ones), one run after each part, gives exactly the totals of one run
# over the whole log, for every MTA: messages whose lines straddle two
# runs keep their sizes, senders, hand-offs and qmail deliveries in the
# offsets file. (Both sides count repeated lines: repeats are skipped
# within a run only.)
# Hundreds of runs, each writing its offsets file with fsync: on tmpfs.
[ -w /dev/shm ] && TMPDIR=/dev/shm && export TMPDIR
. "$(dirname "$0")/lib.sh"
d=$top/cmd/mf-stat/testdata
c=$top/../shared/data/stat-cases
S="mf-stat --tz UTC --now 2026-12-01T23:00:00Z --keep-repeated --csv totals"
# Totals that add up over runs (distinct counts and the percentage do not).
sums='received delivered forwarded deferred deferrals bounced rejected tempfailed reject_warnings held discarded filtered bytes_received bytes_delivered decisions problems'

# split_check NAME FILE
split_check() {
	rm -f "$tmp/grow" "$tmp/off1" "$tmp/off2" "$tmp"/part.*
	run "$S --offsets $tmp/off1 $2"
	[ "$rc" = 0 ] || { not_ok "$1: one run" "exit $rc" "$(head -3 "$tmp/err")"; return; }
	awk -F, 'NR > 1 { print $2, $1 }' "$tmp/out" | sort >"$tmp/whole"
	# ten lines a part; a line a part for the short logs
	per=10
	[ "$(wc -l <"$2")" -lt 100 ] && per=1
	split -a 5 -l $per "$2" "$tmp/part."
	: >"$tmp/sum"
	runs=0 fail=
	for p in "$tmp"/part.*; do
		cat "$p" >>"$tmp/grow"
		run "$S --offsets $tmp/off2 $tmp/grow"
		[ "$rc" = 0 ] || fail="run $runs: exit $rc $(head -1 "$tmp/err")"
		awk -F, 'NR > 1 { print $2, $1 }' "$tmp/out" >>"$tmp/sum"
		runs=$((runs + 1))
	done
	bad=
	for k in $sums; do
		a=$(awk -v k=$k '$1 == k { print $2 }' "$tmp/whole")
		b=$(awk -v k=$k '$1 == k { s += $2 } END { print s + 0 }' "$tmp/sum")
		[ "$a" = "$b" ] || bad="$bad $k=$b(one run $a)"
	done
	n=$(awk -v k=received '$1 == k { print $2 }' "$tmp/whole")
	if [ -z "$fail" ] && [ -z "$bad" ]; then ok "$1: $runs runs of $per line(s) give the totals of one run ($n received)"
	else not_ok "$1: $runs runs of $per line(s) give the totals of one run" "$fail" "$bad"; fi
}

gzip -dc "$d/postfix-maillog.gz" >"$tmp/maillog"
gzip -dc "$d/postfix-mailog2.gz" >"$tmp/mailog2"
split_check 'postfix and sendmail (maillog dump)' "$tmp/maillog"
split_check 'postfix (mailog2 dump)' "$tmp/mailog2"
split_check 'sendmail' "$d/sendmail.log"
split_check 'qmail (multilog)' "$d/qmail.log"
split_check 'qmail forward' "$top/t/stat/qmail-forward.log"
split_check 'postfix with amavis' "$d/postfix-amavis.log"
for f in "$c"/*.log; do
	split_check "stat case $(basename "$f")" "$f"
done
# The offsets file keeps what is in flight, and is written whole: a
# temporary beside it renamed over it, nothing left behind.
check_grep 'the offsets file holds messages in flight' "$tmp/off2" '"in_flight":\{'
ls "$tmp" | grep '^off' | grep -Ev '^off[12](\.lock)?$' >"$tmp/left" && not_ok 'no temporary left beside the offsets file' "$(cat "$tmp/left")" || ok 'no temporary left beside the offsets file'
done_testing
