#!/bin/sh
# Bad input: exit 75, nothing on stdout, a message saying what is wrong.
. "$(dirname "$0")/lib.sh"

printf 'match: client-addr\naction: block\n192.0.2.0/24\n' >"$tmp/b.list"
M="mf-lists --list $tmp/b.list check" L="$M --input stream"

bad() { # bad DESC PATTERN-IN-STDERR STREAM-TEXT
	printf "$3" >"$tmp/in"
	check_refused "$1" "$2" "$L <$tmp/in"
}
bad 'unknown stream version' 'version "2"' 'Mf-Stream: 2\nMf-Stage: data\n\nbody\n'
bad 'unknown envelope field' 'Mf-Colour.*unknown field' 'Mf-Stream: 1\nMf-Stage: data\nMf-Colour: red\n\nbody\n'
bad 'single field given twice' 'Mf-Mail-From.*given twice' 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@b>\nMf-Mail-From: <c@d>\n\n'
bad 'no stage' 'no Mf-Stage' 'Mf-Stream: 1\n\nbody\n'
bad 'unknown phase' 'unknown phase' 'Mf-Stream: 1\nMf-Stage: quit\n\n'
bad 'envelope never ended' 'not ended' 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 192.0.2.1\n'
bad 'bad percent escape' "'%' not followed" 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a%%zz@b>\n\n'
bad 'line without a colon' 'malformed' 'Mf-Stream: 1\nMf-Stage: data\nnonsense\n\n'
bad 'bad verdict' 'Mf-Verdict' 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 250 ok\n\n'
run "printf 'Mf-Stage: data\nMf-Stream: 1\n\n' | $L --input stream"
[ "$rc" = 75 ] && ok '--input stream refuses a bare message' || not_ok '--input stream refuses a bare message' "exit $rc"

head -c 2000000 /dev/zero | tr '\0' 'x' >"$tmp/long"
{ printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Helo: '; cat "$tmp/long"; printf '\n\n'; } >"$tmp/in"
run "$L <$tmp/in"
[ "$rc" = 75 ] && grep -q 'longer than' "$tmp/err" && ok 'an envelope over 1 MiB is refused' || not_ok 'an envelope over 1 MiB is refused' "exit $rc" "$(cat "$tmp/err")"

# Strangers' messages are not the stage's business to judge: they pass.
# The project's shared data sits beside the checkout.
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
for f in "$data"/enmime/testdata/mail/*.raw "$data"/cpython-test_email/msg_1*.txt; do
	[ -f "$f" ] || continue
	run "$M --output message --client 203.0.113.1 <'$f' | cmp - '$f'"
	[ "$rc" = 0 ] || { not_ok "odd message $(basename "$f") passes unchanged" "$(cat "$tmp/err")"; continue; }
	n=$((${n:-0} + 1))
done
[ "${n:-0}" -gt 5 ] && ok "$n odd real-world messages pass unchanged" || not_ok 'odd real-world messages pass unchanged' "only ${n:-0} found"
head -c 100000 /dev/urandom >"$tmp/noise"
check 'random bytes pass through as a message' "$M --output message --client 203.0.113.1 <$tmp/noise | cmp - $tmp/noise"
done_testing
