#!/bin/sh
# A damaged record in the middle of a shard is reported, and the records
# after it are kept: a count of 50 goes on to 51, not back to what the
# record before the damage said.
. "$(dirname "$0")/lib.sh"

printf 'quota.rule a key=sender limit=1000/3650d window=fixed\n' >"$tmp/mf.conf"
Q="mf-quota -c $tmp/mf.conf"
# No queue ID: every run counts.
printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 192.0.2.7\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <r@example.com>\n\n' >"$tmp/in"
i=0
while [ $i -lt 50 ]; do "$top/bin/mf-quota" -c "$tmp/mf.conf" check --input stream --output none <"$tmp/in" || break; i=$((i + 1)); done
[ $i = 50 ] && ok '50 messages counted' || not_ok '50 messages counted' "stopped at $i"
shard=$(ls "$tmp"/state/kv/*.kv)
size=$(wc -c <"$shard")
printf '\377\377\377\377' | dd of="$shard" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
run "$Q show a@example.org"
check_grep 'show reads past the damage' "$tmp/out" '^a +a@example\.org +50/1000 '
check_grep '... and says where it is' "$tmp/err" "warning: state: .*\\.kv: damaged: 4 bytes|warning: state: .*\\.kv: damaged: [0-9]+ bytes at offset"
check_status 'the next check counts' continue "$Q check --input stream --output none <$tmp/in"
run "$Q show a@example.org"
check_grep '... from 50 to 51' "$tmp/out" '^a +a@example\.org +51/1000 '
check_nogrep '... and the shard is whole again' "$tmp/err" 'damaged'
done_testing
