# Cron mode (--offsets): append, rotate (rename, then compress), copy and
# truncate; every line is counted exactly once across the runs.
. "$(dirname "$0")/lib.sh"
S="mf-stat --tz UTC --now 2026-11-23T12:00:00Z --offsets $tmp/state --csv totals"
L=$tmp/mail.log
n=0
# add FILE COUNT: append COUNT reject lines, each different.
add() {
	i=0
	while [ $i -lt "$2" ]; do
		n=$((n + 1)); i=$((i + 1))
		echo "Nov 23 10:00:00 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <u$n@example.com>: Relay access denied; from=<s@example.org> to=<u$n@example.com> proto=ESMTP helo=<x>" >>"$1"
	done
}
# step DESC WANT: a run reports WANT rejects.
total=0
step() {
	run "$S $L"
	got=$(awk -F, '$2 == "rejected" { print $1 }' "$tmp/out")
	total=$((total + ${got:-0}))
	[ "$rc" = 0 ] && [ "$got" = "$2" ] && ok "$1: $2 new" || not_ok "$1" "exit $rc, got '$got' want $2" "$(head -3 "$tmp/err")"
}

add "$L" 10; step 'first run reads the whole log' 10
step 'nothing new, nothing counted' 0
add "$L" 5; printf 'Nov 23 10:00:00 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <half' >>"$L"
step 'appended lines; a line without its newline waits' 5
n=$((n + 1)); echo "@example.com>: Relay access denied; from=<s@example.org> to=<half@example.com> proto=ESMTP helo=<x>" >>"$L"
add "$L" 3; step 'the finished line and the new ones' 4
# Rotation: the old file is renamed and written to a little more, a new
# one begins.
mv "$L" "$L.1"; add "$L.1" 2; add "$L" 6
step 'renamed file followed to its end, then the new one' 8
gzip "$L.1"; add "$L" 1
step 'compressing the old file changes nothing' 1
# copytruncate: the copy keeps what came after the last run.
add "$L" 2; cp "$L" "$L.0"; : >"$L"; add "$L" 3
step 'copied and truncated: the copy past the offset, then the new lines' 5
step 'and again nothing' 0
[ "$total" = "$n" ] && ok "every one of the $n lines counted once" || not_ok 'each line once' "counted $total of $n"

# A log whose first line is longer than the fingerprint's read.
L=$tmp/long.log
head -c 100000 /dev/zero | tr '\0' x >"$L"; echo >>"$L"; add "$L" 2
step 'a log with a 100 kB first line' 2
add "$L" 1; step 'is followed like any other' 1

check_grep 'the state file names the log' "$tmp/state" "mail.log"
echo 'not json' >"$tmp/state"
check_refused 'a damaged state file is an error, not a fresh start' 'state' "$S $L"
check_refused 'cron mode needs files' 'stdin' "mf-stat --offsets $tmp/state2 </dev/null"
done_testing
