#!/bin/sh
# A test mode that changes nothing: mf-quota check --dry-run decides and
# reports but counts nothing and blocks nobody; mf-bridge test reads the
# state store but leaves it as it was (its stages get MF_READ_ONLY=true),
# and --live lets it count.
. "$(dirname "$0")/lib.sh"
chmod 755 "$tmp"
mkdir -p "$tmp/state"
as=
if [ "$(id -u)" = 0 ]; then as="--user nobody --stage-user games"; chown games "$tmp/state"; fi
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
quota.rule flood key=client limit=1/1h action=block:abusers for=6h
CONF
Q="mf-quota --config $tmp/mf.conf"
L="mf-lists --config $tmp/mf.conf --list $top/etc/lists/10-local.list"
stream() { printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 192.0.2.7\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n'; cat "$msg/plain.eml"; }
stream >"$tmp/in"
check_status 'real mail: the first message passes' 0 "$Q check --input stream <$tmp/in"
for i in 1 2; do
	check_status "--dry-run $i: over the limit, yet it refuses nothing" 0 "$Q check --dry-run --input stream <$tmp/in"
done
check_grep '... and says what it would do' "$tmp/out" '^Mf-Trace: mf-quota would-reject rule=flood '
check_grep '... and why' "$tmp/err" 'would-reject: rule flood key 192\.0\.2\.7: 2 > 1/1h'
run "$Q show"; check_grep '--dry-run counts nothing: the count stays 1' "$tmp/out" '^flood +192\.0\.2\.7 +1/1 '
check_out '... and blocks nobody' '' "$L show abusers"
check_status 'MF_READ_ONLY decides on the real counts: the second is refused' 100 "MF_READ_ONLY=true $Q check --input stream <$tmp/in"
check_out '... and the block rule adds no entry' '' "$L show abusers"
run "$Q show"; check_grep '... and the count stays 1' "$tmp/out" '^flood +192\.0\.2\.7 +1/1 '
$Q reset 192.0.2.7 >/dev/null
check_status 'MF_READ_ONLY: a first message passes' 0 "MF_READ_ONLY=true $Q check --input stream <$tmp/in"
check_status '... and the second too: nothing was counted' 0 "MF_READ_ONLY=true $Q check --input stream <$tmp/in"
check_out '... so the store holds no counts' 'no counts' "$Q show"
[ -n "$as" ] && chown -R games "$tmp/state"

# mf-bridge test: the same by default; --live counts.
cat >>"$tmp/mf.conf" <<CONF
bridge.stage quota data mf-quota check
CONF
B="mf-bridge --config $tmp/mf.conf $as test --client 192.0.2.7 --from a@example.org --rcpt b@example.com $msg/plain.eml"
check_status 'mf-bridge test: a message within the limit' 0 "$B"
check_status '... tested again, still within it: the test counted nothing' 0 "$B"
check_out '... the store holds no counts' 'no counts' "$Q show"
check_status 'mf-bridge test --live counts the first' 0 "$B --live"
check_status '... and refuses the second, for real' 100 "$B --live"
run "$L show abusers"; check_grep '... whose block rule adds the client' "$tmp/out" '^abusers	client-addr 192\.0\.2\.7	'
done_testing
