#!/bin/sh
# A check that fails (exit 75) leaves no count behind: the MTA tries the
# message again, and it must be counted once then. The failure is a real
# one: the shard the second rule writes to cannot be written.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip 'a failed check leaves no count' 'needs root, to make a shard the check cannot write'
	done_testing; exit
fi
need setpriv util-linux || { skip 'a failed check leaves no count' 'no setpriv'; done_testing; exit; }
chmod 755 "$tmp"
mkdir "$tmp/state"
chown nobody:nogroup "$tmp/state"
N="setpriv --reuid=nobody --regid=nogroup --clear-groups"
# No queue ID: every run counts, so a count left behind shows.
printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 192.0.2.7\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <r@example.com>\n\n' >"$tmp/in"
# Windows of ten years, fixed: the counts stay in one window throughout.
printf 'state-dir %s\nquota.rule a key=sender limit=100/3650d window=fixed\n' "$tmp/state" >"$tmp/mf.conf"
chmod 644 "$tmp/mf.conf" "$tmp/in"
check_status 'rule a alone counts the message' continue "$N mf-quota -c $tmp/mf.conf check --input stream --output none <$tmp/in"
# Every shard but the one rule a writes to: there, read-only.
i=0
while [ $i -lt 1024 ]; do
	f=$tmp/state/kv/$(printf '%03x' $i).kv
	[ -e "$f" ] || { : >"$f"; chmod 444 "$f"; }
	i=$((i + 1))
done
printf 'quota.rule b key=client limit=100/3650d window=fixed\n' >>"$tmp/mf.conf"
check_status 'with rule b, whose shard is read-only, the check fails' error "$N mf-quota -c $tmp/mf.conf check --input stream --output none <$tmp/in"
check_grep '... saying why' "$tmp/err" 'permission denied'
run "$N mf-quota -c $tmp/mf.conf show"
check_grep "... and rule a's count is what it was" "$tmp/out" '^a +a@example\.org +1/100 '
check_nogrep "... not 2" "$tmp/out" '^a +a@example\.org +2/100 '
chmod 644 "$tmp"/state/kv/*.kv
chown nobody:nogroup "$tmp"/state/kv/*.kv
check_status 'the retry, once the shard is writable, passes' continue "$N mf-quota -c $tmp/mf.conf check --input stream --output none <$tmp/in"
run "$N mf-quota -c $tmp/mf.conf show"
check_grep '... and counts the message once under rule a' "$tmp/out" '^a +a@example\.org +2/100 '
check_grep '... and once under rule b' "$tmp/out" '^b +192\.0\.2\.7 +1/100 '
done_testing
