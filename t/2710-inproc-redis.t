#!/bin/sh
# mf-quota and mf-lists in-process over a real redis-server, mail through
# a real Postfix: the quota holds across messages, and the stages keep
# their Redis connections open (the server counts the connections made:
# a few for 30 messages, not one per stage run); after a SIGHUP the old
# generation's connections are closed once its last session has ended.
. "$(dirname "$0")/lib.sh"
. "$top/t/redis.sh"
. "$top/t/postfix.sh"
# In-process stages are for a bridge whose stages run as itself.
bridge_alone=1
need_postfix
need redis-server redis-server || { skip 'in-process stages over Redis' 'redis-server missing'; done_testing; exit 0; }
need redis-cli redis-tools || { skip 'in-process stages over Redis' 'redis-cli missing'; done_testing; exit 0; }

redis_start
[ -n "$rpid" ] || { not_ok 'redis-server starts' "$(tail -3 "$tmp/redis.log")"; done_testing; exit 1; }
at_exit 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null'
rc() { redis-cli -p "$port" "$@"; }
conns() { rc info stats | sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p'; }

chmod 755 "$tmp"
mkdir -p "$tmp/lists" "$tmp/state"
printf 'match: sender\naction: block\n@spam.example\n' >"$tmp/lists/10-block.list"
chmod -R a+rX "$tmp/lists"; chown nobody "$tmp/state"
cat >"$tmp/mf.conf" <<CONF
state redis://127.0.0.1:$port/0
lists.dir $tmp/lists
quota.rule per-sender key=sender limit=5/1h count=recipients reply="451 4.7.1 Slow down"
bridge.stage lists rcpt,data mf-lists check
bridge.stage quota rcpt mf-quota check
CONF
export MF_STATE_DIR=$tmp/state
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge starts'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
before=$(conns)
i=0
while [ $i -lt 30 ]; do
	i=$((i + 1))
	swaks --server 127.0.0.1:$pf_port --helo c.example.org --from "s$((i % 3))@example.org" --to b@example.test --header "Subject: m$i" >"$tmp/m$i" 2>&1
done
pf_wait_delivered 15
got=$(pf_delivered)
[ "$got" = 15 ] && ok 'three senders with a quota of 5: 15 of 30 messages delivered' || not_ok 'three senders with a quota of 5: 15 of 30 messages delivered' "$got delivered" "$(grep -h '^<\*\*' "$tmp"/m* | sort | uniq -c)"
check_grep '... the others tempfailed at RCPT with the rule reply' "$tmp/m30" '<\*\* 451 4.7.1 Slow down'
made=$(($(conns) - before))
[ "$made" -le 4 ] && ok "Redis connections kept open across 30 messages ($made made)" || not_ok "Redis connections kept open across 30 messages" "$made connections made for 30 messages"
rc client list | grep -v 'cmd=client|list' >"$tmp/clients.before"
[ -s "$tmp/clients.before" ] && ok '... and still open between messages' || not_ok '... and still open between messages' "$(rc client list)"
check_nogrep 'no stage failed' "$tmp/bridge.log" 'failed'

# The dynamic lists in Redis stay compiled between messages: read (ZRANGE
# of their index) once for each change, not at each run; an entry added
# with mf-lists add blocks the next message, and deleted, lets it pass.
zrange() { rc info commandstats | sed -n 's/^cmdstat_zrange:calls=\([0-9]*\),.*/\1/p'; }
send() { swaks --server 127.0.0.1:$pf_port --helo c.example.org --from "$1@example.org" --to b@example.test >"$tmp/$1" 2>&1; }
z0=$(zrange)
for i in 1 2 3 4 5; do send "d$i"; done
reads=$(($(zrange) - ${z0:-0}))
[ "$reads" -le 1 ] && ok "5 messages: the dynamic lists read from Redis $reads times" || not_ok "5 messages: the dynamic lists read from Redis at most once" "$reads reads"
check_grep '... and the messages passed' "$tmp/d5" '<-  250 2.0.0 Ok: queued'
check 'mf-lists add puts the client on a dynamic list in Redis' "mf-lists --config $tmp/mf.conf add attackers 127.0.0.1 --ttl 1h"
send blocked
check_grep '... which rejects the next message at RCPT' "$tmp/blocked" '<\*\* 550 5.7.1 Access denied'
check 'mf-lists del takes it off' "mf-lists --config $tmp/mf.conf del attackers 127.0.0.1"
send unblocked
check_grep '... and the next message passes' "$tmp/unblocked" '<-  250 2.0.0 Ok: queued'
check_nogrep 'no stage failed' "$tmp/bridge.log" 'failed'

# A reload: a new generation; the old one's connections are closed once
# its last session has ended (Postfix keeps no milter connection between
# SMTP sessions).
maxid=$(sed 's/^id=\([0-9]*\) .*/\1/' "$tmp/clients.before" | sort -n | tail -1)
kill -HUP $bridge_pid
i=0
until grep -q 'configuration reloaded' "$tmp/bridge.log"; do i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1; done
swaks --server 127.0.0.1:$pf_port --helo c.example.org --from new@example.org --to b@example.test --header "Subject: after reload" >"$tmp/reload" 2>&1
check_grep 'after a reload mail still passes' "$tmp/reload" '<-  250 2.0.0 Ok: queued'
sleep 1
rc client list | grep -v 'cmd=client|list' >"$tmp/clients"
old=$(awk -v m="$maxid" '{ sub(/^id=/, "", $1); if ($1 + 0 <= m) n++ } END { print n + 0 }' "$tmp/clients")
new=$(wc -l <"$tmp/clients")
if [ "$old" = 0 ] && [ "$new" -ge 1 ]; then
	ok "after the reload the old generation's connections are closed ($new of the new one open)"
else
	not_ok "after the reload the old generation's connections are closed" "$old from before the reload, $new in all:" "$(cat "$tmp/clients")"
fi
done_testing
