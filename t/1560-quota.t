#!/bin/sh
# mf-quota: limits per window, tempfail text, block action feeding
# mf-lists, dry-run, show and reset, counting once per transaction, bad
# rules refused with file:line.
. "$(dirname "$0")/lib.sh"

conf=$tmp/mf.conf
Q="mf-quota -c $conf"
# envelope STAGE QUEUEID SENDER RCPT...: a stream without a message.
envelope() {
	st=$1 id=$2 from=$3; shift 3
	printf 'Mf-Stream: 1\nMf-Stage: %s\nMf-Queue-Id: %s\nMf-Client-Addr: 192.0.2.7\nMf-Mail-From: <%s>\n' "$st" "$id" "$from"
	for r in "$@"; do printf 'Mf-Rcpt-To: <%s>\n' "$r"; done
	printf '\n'
}
# data QUEUEID SENDER: a data-stage stream with a real message.
data() { envelope data "$1" "$2" bob@example.com; cat "$msg/plain.eml"; }

cat >"$conf" <<'C'
quota.rule per-sender key=sender limit=3/1s,100/1d reply="451 4.7.1 Too much mail from you, slow down"
C
for i in 1 2 3; do
	data "A$i" fast@example.org >"$tmp/in"
	check_exit "message $i of 3 a second passes" 0 "$Q check --input stream <$tmp/in"
done
cmp -s "$tmp/out" "$tmp/in" && ok 'a passed stream goes on unchanged but for the trace' || {
	grep -v '^Mf-Trace:' "$tmp/out" | cmp -s - "$tmp/in" && ok 'a passed stream goes on unchanged but for the trace' || not_ok 'a passed stream goes on unchanged but for the trace'
}
data A4 fast@example.org >"$tmp/in"
check_exit 'the fourth in the same second gets 111' 111 "$Q check --input stream <$tmp/in"
check_grep '... with the configured text' "$tmp/out" '^Mf-Verdict: tempfail 451 4\.7\.1 Too much mail from you, slow down$'
check_grep '... and the log names rule and key' "$tmp/err" 'tempfail: rule per-sender key fast@example.org'
data A5 other@example.org >"$tmp/in2"
check_exit '... another sender is not held back' 0 "$Q check --input stream --output none <$tmp/in2"
sleep 3
check_exit 'once the window has passed the sender gets through' 0 "$Q check --input stream --output none <$tmp/in"
run "$Q show fast@example.org"
check_grep 'show: the per-second count' "$tmp/out" '^per-sender +fast@example\.org +[0-9]+/3 +per 1s'
check_grep 'show: the per-day count counts the passed messages only' "$tmp/out" '^per-sender +fast@example\.org +4/100 +per 1d'
check_out 'reset deletes the counts of a key' "2 counters of fast@example.org deleted" "$Q reset fast@example.org"
check_out '... and show has none left' "no counts for fast@example.org" "$Q show fast@example.org"
run "$Q expire"
check_grep 'expire says what it dropped' "$tmp/out" '^[0-9]+ expired entries dropped$'


# Counted once per transaction: the same message through twice, and
# recipients counted at rcpt and seen again at data.
cat >"$conf" <<'C'
quota.rule msgs key=sender limit=1/1h count=messages action=reject reply="550 5.7.1 One a day"
quota.rule rcpts key=sender-domain limit=2/1h count=recipients
C
envelope rcpt T1 a@example.net r1@example.com >"$tmp/r1"
envelope rcpt T1 a@example.net r1@example.com r2@example.com >"$tmp/r2"
envelope rcpt T1 a@example.net r1@example.com r2@example.com r3@example.com >"$tmp/r3"
check_exit 'rcpt 1 of 2' 0 "$Q check --input stream --output none <$tmp/r1"
check_exit 'rcpt 2 of 2' 0 "$Q check --input stream --output none <$tmp/r2"
check_exit 'rcpt 3 is refused alone' 111 "$Q check --input stream <$tmp/r3"
check_grep '... with the default reply' "$tmp/out" '^Mf-Verdict: tempfail 451 4\.7\.1'
envelope data T1 a@example.net r1@example.com r2@example.com >"$tmp/in"; cat "$msg/plain.eml" >>"$tmp/in"
check_exit 'at data the two recipients counted at rcpt are not counted again' 0 "$Q check --input stream --output none <$tmp/in"
check_exit 'the same message through the chain twice counts once' 0 "$Q check --input stream --output none <$tmp/in"
envelope data T2 a@example.net r9@example.com >"$tmp/in2"; cat "$msg/plain.eml" >>"$tmp/in2"
check_exit 'a second transaction is counted: reject' 100 "$Q check --input stream <$tmp/in2"
check_grep '... with the rule'"'"'s reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 One a day$'

# Bytes: two messages' worth per hour.
size=$(wc -c <"$msg/plain.eml")
printf 'quota.rule big key=sender limit=%s/1h count=bytes\n' $((size * 2)) >"$conf"
data Z1 big@example.org >"$tmp/in"; data Z2 big@example.org >"$tmp/in2"
check_exit 'bytes: the first message' 0 "$Q check --input stream <$tmp/in"
grep -v '^Mf-Trace:' "$tmp/out" | cmp -s - "$tmp/in" && ok '... goes on byte for byte' || not_ok '... goes on byte for byte'
check_exit 'bytes: the second' 0 "$Q check --input stream --output none <$tmp/in2"
data Z3 big@example.org >"$tmp/in"
check_exit 'bytes: the third passes the limit' 111 "$Q check --input stream --output none <$tmp/in"
check_grep '... counted in bytes' "$tmp/err" "rule big key big@example.org: $((size * 3)) > $((size * 2))/1h"

# Block action: the client goes on a dynamic list that mf-lists checks.
cat >"$conf" <<C
quota.rule flood key=client limit=2/1h action=block:abusers for=6h
C
mkdir -p "$tmp/lists"
L="mf-lists -c $conf --dir $tmp/lists"
check_exit 'before: mf-lists lets the client in' 0 "$L check --output none --client 192.0.2.7 </dev/null"
data B1 x@example.org | $Q check --input stream --output none; data B2 y@example.org | $Q check --input stream --output none
data B3 z@example.org >"$tmp/in"
check_exit 'the third message from the client passes the block rule: 100' 100 "$Q check --input stream --output none <$tmp/in"
check_grep '... and is logged as blocked' "$tmp/err" '192\.0\.2\.7 added to dynamic list abusers for 6h'
check_exit 'mf-lists check now blocks the client' 100 "$L check --client 192.0.2.7 </dev/null"
check_grep '... with the dynamic list reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Access denied$'
run "$L show abusers"
check_grep 'mf-lists show: entry, expiry, who and why' "$tmp/out" '^abusers	client-addr 192\.0\.2\.7	expires [0-9T:-]+Z	added [0-9T:-]+Z by mf-quota	quota rule flood: messages 192\.0\.2\.7 over 2/1h$'
check_exit 'another client is not blocked' 0 "$L check --output none --client 192.0.2.8 </dev/null"

# Dry run: counts and logs, refuses nothing, blocks nobody.
cat >"$conf" <<C
quota.rule watch key=client limit=1/1h action=block:dry dry-run
quota.rule watch2 key=sender limit=1/1h
C
for i in 1 2 3; do data "D$i" "d$i@example.org" | $Q check --input stream --output none 2>>"$tmp/dry.err"; done
data D4 d4@example.org >"$tmp/in"
check_exit 'a dry-run rule over its limit lets mail through' 0 "$Q check --input stream <$tmp/in"
check_nogrep '... writes no verdict' "$tmp/out" '^Mf-Verdict:'
check_grep '... and logs what it would do' "$tmp/dry.err" 'dry-run: would reject: rule watch key 192\.0\.2\.7'
check_out '... and blocks nobody' '' "$L show dry"
data D5 d4@example.org >"$tmp/in"; data D6 d4@example.org >"$tmp/in2"
check_exit '--dry-run makes every rule a dry run' 0 "$Q check --input stream --dry-run --output none <$tmp/in"
check_exit '... without it the other rule refuses' 111 "$Q check --input stream --output none <$tmp/in2"

# Bad rules are refused with file and line.
badrule() { # badrule DESC PATTERN RULE
	printf 'state-dir %s\nquota.rule %s\n' "$tmp/state" "$3" >"$tmp/bad.conf"
	check_refused "$1" "$tmp/bad.conf:2: quota.rule: .*$2" "mf-quota -c $tmp/bad.conf check <$msg/plain.eml"
}
badrule 'no key' 'no key=' 'r1 limit=3/1m'
badrule 'no limit' 'no limit=' 'r1 key=sender'
badrule 'unknown key part' 'key "ip"' 'r1 key=ip limit=3/1m'
badrule 'bad limit' 'N/DURATION' 'r1 key=sender limit=30'
badrule 'bad window length' 'like 30s' 'r1 key=sender limit=3/1y'
badrule 'reply contradicts action' 'tempfail needs a 4xx' 'r1 key=sender limit=3/1m reply="550 5.7.1 no"'
badrule 'block on a key no list matches' 'action=block needs a key' 'r1 key=rcpt limit=3/1m action=block'
badrule 'unknown option' 'unknown option "colour"' 'r1 key=sender limit=3/1m colour=red'
badrule 'unterminated quote' 'unterminated quote' 'r1 key=sender limit=3/1m reply="451 4.7.1 x'
printf 'quota.rule a key=sender limit=1/1m\nquota.rule a key=client limit=1/1m\n' >"$tmp/bad.conf"
check_refused 'two rules of one name' "$tmp/bad.conf:2: .*already exists" "mf-quota -c $tmp/bad.conf check <$msg/plain.eml"
printf 'quota.exempt-net 10.0.0.0/33\n' >"$tmp/bad.conf"
check_refused 'bad exempt network' "$tmp/bad.conf:1: quota.exempt-net" "mf-quota -c $tmp/bad.conf check <$msg/plain.eml"

# Exemptions and the concurrency limit with its reserve.
cat >"$conf" <<C
quota.rule tight key=client limit=0/1h
quota.exempt-net 192.0.2.0/24
quota.exempt-auth
C
data E1 e@example.org >"$tmp/in"
check_exit 'an exempt network is not counted' 0 "$Q check --input stream --output none <$tmp/in"
check_exit 'an authenticated sender is exempt' 0 "$Q check --output none --client 198.51.100.1 --auth-user alice --from e@example.org --rcpt b@example.com <$msg/plain.eml"
check_exit '... others are not' 111 "$Q check --output none --client 198.51.100.1 --from e@example.org --rcpt b@example.com <$msg/plain.eml"
cat >"$conf" <<C
quota.concurrency 2
quota.concurrency-reserve 1
C
C4="$Q check --output none --client 198.51.100.1 --from e@example.org --rcpt b@example.com"
check_exit 'concurrency: the first slot' 0 "$C4 --queue-id C1 <$msg/plain.eml"
check_exit 'concurrency: the reserved slot is not for strangers' 111 "$C4 --queue-id C2 <$msg/plain.eml"
check_exit '... but for an authenticated sender' 0 "$C4 --queue-id C3 --auth-user alice <$msg/plain.eml"
check_exit '... and when all are taken, not even for them' 111 "$C4 --queue-id C4 --auth-user bob <$msg/plain.eml"
check_exit 'release ends a slot' 0 "$Q release --queue-id C1 </dev/null"
check_exit '... one slot held leaves none for strangers' 111 "$C4 --queue-id C5 <$msg/plain.eml"
envelope data C3 a@example.org b@example.com | $Q release --input stream
check_exit 'release reads the queue ID from the stream; a stranger gets the free slot' 0 "$C4 --queue-id C6 <$msg/plain.eml"

# A stuck peer holding the store's locks: give up with 75, do not hang.
# perl (Essential in Debian) holds every shard lock at once.
if command -v perl >/dev/null; then
	mkdir -p "$tmp/stuck/kv"
	i=0; while [ $i -lt 1024 ]; do : >"$tmp/stuck/kv/$(printf %03x $i).lock"; i=$((i + 1)); done
	perl -e 'use Fcntl ":flock"; for (glob "$ARGV[0]/*.lock") { open my $f, ">>", $_ or die; flock $f, LOCK_EX or die; push @f, $f } open my $r, ">", "$ARGV[0]/held"; close $r; sleep 4' "$tmp/stuck/kv" &
	while [ ! -e "$tmp/stuck/kv/held" ]; do sleep 0.1; done
	printf 'quota.rule r key=sender limit=5/1m\n' >"$conf"
	start=$(date +%s)
	run "$Q --state-dir $tmp/stuck --lock-timeout 1s check --output none --from s@example.org --rcpt b@example.com <$msg/plain.eml"
	el=$(($(date +%s) - start))
	[ "$rc" = 75 ] && grep -q 'timed out' "$tmp/err" && [ "$el" -lt 4 ] && ok 'lock timeout: exit 75 with a clear message' || not_ok 'lock timeout: exit 75 with a clear message' "exit $rc after ${el}s" "$(cat "$tmp/err")"
	wait
	check_exit '... and works once the locks are free' 0 "$Q --state-dir $tmp/stuck check --output none --from s@example.org --rcpt b@example.com <$msg/plain.eml"
else
	not_ok 'lock timeout # perl missing'
fi

printf 'quota.rule one key=sender limit=5/1m\nquota.rule two key=client limit=9/1h\n' >"$conf"
run "$Q check --print-config"
check_grep '--print-config shows each rule with its line' "$tmp/out" "^quota.rule +two key=client limit=9/1h +# $conf:2\$"
data M1 m@example.org >"$tmp/in"
check_out '--output message writes the message alone' "$(cat "$msg/plain.eml")" "$Q check --input stream --output message <$tmp/in"

check_exit 'a final verdict upstream is passed on' 100 "printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: reject 550 5.7.1 No\n\nx\n' | $Q check --input stream"
check_exit 'unknown command' 75 "$Q frobnicate"
check_exit '--help' 0 "$Q --help"
done_testing
