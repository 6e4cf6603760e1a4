#!/bin/sh
# State made by root belongs to the state directory's owner: mf-lists
# add run as root on a fresh state directory the filter user owns must
# not leave files that user's mf-quota and mf-lists cannot open.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip 'root-made state belongs to the state directory owner' 'needs root'
	done_testing; exit
fi
need setpriv util-linux || { skip 'root-made state belongs to the state directory owner' 'no setpriv'; done_testing; exit; }
chmod 755 "$tmp"
mkdir "$tmp/state" "$tmp/lists"
chown nobody:nogroup "$tmp/state"
printf 'match: client-addr\naction: block\n192.0.2.66\n' >"$tmp/lists/10-block.list"
cat >"$tmp/mf.conf" <<C
state-dir $tmp/state
quota.rule per-sender key=sender limit=100/1h
C
chmod 644 "$tmp/mf.conf"
N="setpriv --reuid=nobody --regid=nogroup --clear-groups"
envelope() {
	printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Queue-Id: %s\nMf-Client-Addr: 192.0.2.7\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <r@example.com>\n\n' "$1"
}

check 'mf-lists add as root' "mf-lists -c $tmp/mf.conf add attackers 203.0.113.5"
check 'mf-lists check as root (compiles and caches the list)' "mf-lists -c $tmp/mf.conf --dir $tmp/lists check --output none --client 192.0.2.1 </dev/null"
run "find $tmp/state ! -user nobody"
[ ! -s "$tmp/out" ] && ok 'everything under the state directory belongs to its owner' || not_ok 'everything under the state directory belongs to its owner' "$(cat "$tmp/out")"
for i in 1 2 3; do
	envelope "Q$i" >"$tmp/in"
	check_status "mf-quota check $i as nobody counts" continue "$N mf-quota -c $tmp/mf.conf check --input stream --output none <$tmp/in"
done
run "$N mf-quota -c $tmp/mf.conf show a@example.org"
check_grep '... and the counts are there' "$tmp/out" '^per-sender +a@example\.org +3/100'
check_status 'mf-lists check as nobody reads the dynamic list root added' reject "$N mf-lists -c $tmp/mf.conf --dir $tmp/lists check --output none --client 203.0.113.5 </dev/null"
printf '192.0.2.77\n' >>"$tmp/lists/10-block.list"
check_status '... and recompiles a changed list' reject "$N mf-lists -c $tmp/mf.conf --dir $tmp/lists --verbose check --output none --client 192.0.2.77 </dev/null"
check_nogrep '... into the cache root made' "$tmp/err" 'cache not written|no list cache|permission denied'
check 'mf-lists del as nobody' "$N mf-lists -c $tmp/mf.conf del attackers 203.0.113.5"
done_testing
