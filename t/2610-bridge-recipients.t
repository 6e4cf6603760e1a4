#!/bin/sh
# Many recipients: the envelope in the environment is bounded, so a stage
# still starts however many recipients a transaction has (exec refuses a
# variable past 128 KiB), and says when RECIPIENTS was cut; the stream
# carries them all.
. "$(dirname "$0")/lib.sh"
as=
if [ "$(id -u)" = 0 ]; then chmod 755 "$tmp"; as="--user nobody --stage-user games"; fi

# stream N SIZE: a saved stream with N recipients of SIZE bytes each.
stream() {
	awk -v n="$1" -v size="$2" 'BEGIN {
		print "Mf-Stream: 1"; print "Mf-Stage: data"; print "Mf-Mail-From: <s@example.org>"
		for (i = 1; i <= n; i++) {
			a = "r" i "@"; pad = ""
			while (length(a pad) < size - length(".example")) pad = pad "x"
			print "Mf-Rcpt-To: <" a pad ".example>"
		}
		print ""; print "Subject: many"; print ""; print "body"
	}'
}
stream 1000 170 >"$tmp/1000x170.stream"
stream 70 2000 >"$tmp/70x2000.stream"
stream 3 20 >"$tmp/3x20.stream"

cat >"$tmp/count" <<'SH'
#!/bin/sh
cat >/dev/null
n=$(printf '%s\n' "$RECIPIENTS" | grep -c .)
echo "X-Rcpts: truncated=${RECIPIENTS_TRUNCATED:-0} count=$RECIPIENT_COUNT kept=$n bytes=${#RECIPIENTS}"
SH
chmod 755 "$tmp/count"
# A stage that refuses everything, and whose failure would be skipped.
refuse="--stage 'refuse data input=message output=exit on-error=accept 0=reject -- true'"
count="--stage 'count data input=message output=headers -- $tmp/count'"
bt="mf-bridge --config $tmp/empty.conf $as"

for s in 1000x170 70x2000; do
	check_status "$s: a stage with on-error=accept still runs, and refuses" reject "$bt $refuse test $tmp/$s.stream"
	run "$bt $count test $tmp/$s.stream"
	check_grep "$s: RECIPIENTS is cut, and says so" "$tmp/out" "X-Rcpts: truncated=1 count=${s%x*} kept=[0-9]+ bytes="
	bytes=$(sed -n 's/.*bytes=\([0-9]*\)$/\1/p' "$tmp/out")
	if [ -n "$bytes" ] && [ "$bytes" -le 65536 ] && [ "$bytes" -gt 30000 ]; then ok "$s: ... within 64 KiB"
	else not_ok "$s: ... within 64 KiB" "RECIPIENTS is ${bytes:-?} bytes"; fi
done
run "$bt $count test $tmp/3x20.stream"
check_grep 'a few recipients: RECIPIENTS is whole' "$tmp/out" 'X-Rcpts: truncated=0 count=3 kept=3 bytes=62$'
# A stream stage sees every recipient.
cat >"$tmp/all" <<'SH'
#!/bin/sh
s=$(cat)
n=$(printf '%s\n' "$s" | sed '/^$/q' | grep -c '^Mf-Rcpt-To:')
printf '%s\n' "$s" # the stream goes on whole
[ "$n" = 1000 ] && exit 0; exit 100
SH
chmod 755 "$tmp/all"
check_status 'the stream carries all 1000' continue "$bt --stage 'all data output=stream -- $tmp/all' test $tmp/1000x170.stream"
# A value no SMTP command carries, from a hand-made stream: the stage
# cannot be given it, and on-error=accept does not skip it.
awk 'BEGIN { h = ""; while (length(h) < 200000) h = h "hhhhhhhhhh"; print "Mf-Stream: 1"; print "Mf-Stage: data"; print "Mf-Helo: " h; print ""; print "Subject: x"; print ""; print "b" }' >"$tmp/helo.stream"
check_status 'a 200 KB HELO: tempfail, whatever on-error says' tempfail "$bt $refuse test $tmp/helo.stream"
done_testing
