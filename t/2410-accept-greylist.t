#!/bin/sh
# Greylisting end to end: a real Postfix with mf-bridge running
# "mf-accept check" at RCPT, SPF answered by nsd on loopback. The first
# attempt of a tuple gets 4xx, a retry before the delay 4xx, a retry after
# it 250; the tuple is then allowed, "greylist release" lets a retry
# through at once, and a client whose tuples passed is allowed whole.
# Then two hosts (two state directories) sharing one Redis.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
. "$top/t/dns.sh"
need_postfix
need_dns

cat >"$dns/test.zone" <<'Z'
pass            TXT   "v=spf1 ip4:127.0.0.1 -all"
other           TXT   "v=spf1 ip4:192.0.2.1 -all"
Z
printf '127.0.0.2\n' >"$dns/rbl/bl.txt"
dns_start bl.test:ip4set:bl.txt || { not_ok 'DNS servers start'; done_testing; exit 1; }
mkdir -p "$tmp/state"; chown games "$tmp/state"
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
accept.resolver 127.0.0.1:$nsd_port
accept.dns-timeout 2s
accept.check greylist
accept.check spf-fail action=tag
accept.greylist-delay 8s
accept.greylist-window 1h
accept.greylist-auto-allow 2
bridge.stage accept rcpt mf-accept check
CONF
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }

send() {
	name=$1 from=$2; shift 2
	swaks --server 127.0.0.1:$pf_port --from "$from" --to alice@example.test --header "Subject: $name" "$@" >"$tmp/$name" 2>&1
}
grey() { check_grep "$1" "$tmp/$2" '<\*\* +451 4\.7\.1 Greylisted, try again later'; }
taken() { check_grep "$1" "$tmp/$2" '<- +250 2\.0\.0 Ok: queued'; }

# The delay is long enough for the early retry to come before it on a
# busy machine; the late one waits for the rest of it.
t0=$(date +%s)
send first bob@other.test
grey 'first attempt of a tuple: 4xx at RCPT' first
send early bob@other.test
grey 'a retry before the delay: 4xx again' early
sleep $((9 - ($(date +%s) - t0)))
send late bob@other.test
taken 'a retry after the delay: 250' late
send again bob@other.test
taken 'the tuple is now allowed: taken at once' again
run "mf-accept --config $tmp/mf.conf greylist show bob@other.test"
check_grep 'greylist show: the tuple, allowed' "$tmp/out" '^tuple 127\.0\.0\.0/24 bob@other\.test alice@example\.test allowed .*passed=2'

send carol1 carol@other.test
grey 'another sender: a new tuple, 4xx' carol1
check_status 'greylist release of it' continue "mf-accept --config $tmp/mf.conf greylist release '127.0.0.0/24 carol@other.test alice@example.test'"
check_grep '... says so' "$tmp/out" '^released 127\.0\.0\.0/24 carol@other\.test alice@example\.test$'
send carol2 carol@other.test
taken '... the next retry passes at once' carol2
check_status 'release of an unknown tuple is an error' error "mf-accept --config $tmp/mf.conf greylist release 127.0.0.0/24 nobody@other.test alice@example.test"
send dave dave@other.test
taken 'two tuples of the client passed: its network is allowed whole' dave
run "mf-accept --config $tmp/mf.conf greylist show 127.0.0.0/24"
check_grep '... greylist show says so' "$tmp/out" '^client 127\.0\.0\.0/24 allowed passed=2'

# An SPF pass skips the greylist; a new client network would be
# greylisted, but this one is allowed now, so start afresh.
rm -rf "$tmp/state/kv"
send spf erin@pass.test
taken 'an SPF pass skips the greylist' spf
pf_wait_delivered 5
check_out 'five delivered' 5 "ls $tmp/pf/mail/inbox/new | wc -l"
m=$(pf_mail 'Subject: spf')
check_grep '... with Received-SPF from the RCPT phase' "${m:-/dev/null}" '^Received-SPF: pass client-ip=127\.0\.0\.1; envelope-from="erin@pass\.test";'
grep -c '^Received-SPF:' "${m:-/dev/null}" >"$tmp/n"
check_grep '... once' "$tmp/n" '^1$'
check_status 'greylist expire' continue "mf-accept --config $tmp/mf.conf greylist expire"
check_grep '... counts what it dropped' "$tmp/out" '^[0-9]+ expired entries dropped$'

# Dry run: the decision is recorded, the tuple is not.
rm -rf "$tmp/state/kv"
A="mf-accept --config $tmp/mf.conf check --phase rcpt --client 192.0.2.9 --from x@other.test --rcpt a@example.test"
check_status 'dry run: greylist would tempfail, goes on' continue "$A --dry-run </dev/null"
check_grep '... traced as would-tempfail' "$tmp/out" '^Mf-Trace: mf-accept would-tempfail check=greylist'
check_out '... and left no tuple' 'no greylist entries' "mf-accept --config $tmp/mf.conf greylist show"

# The retry window: a retry after it is a first attempt again.
printf 'state-dir %s\naccept.resolver 127.0.0.1:%s\naccept.check greylist\naccept.greylist-delay 1s\naccept.greylist-window 4s\n' "$tmp/w" $nsd_port >"$tmp/w.conf"
W="mf-accept --config $tmp/w.conf check --phase rcpt --client 192.0.2.30 --from late@other.test --rcpt a@example.test </dev/null"
check_status 'window: first attempt' tempfail "$W"
sleep 5
check_status '... a retry after the window: greylisted again' tempfail "$W"
check_grep '... the log says new' "$tmp/err" 'status=new'
sleep 1.5
check_status '... its retry within the new window passes' continue "$W"

# Two hosts, one Redis: host A sees the first attempt, host B the retry.
if ! command -v redis-server >/dev/null; then
	if [ -n "${CI:-}" ]; then not_ok 'redis-server installed' 'apt-get install redis-server'; else skip 'greylist in Redis' 'redis-server missing'; fi
	done_testing; exit
fi
for try in 1 2 3 4 5; do
	port=$((20000 + ($$ * 11 + try * 137) % 30000))
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
	rpid=$!
	for i in 1 2 3 4 5 6 7 8 9 10; do
		grep -q 'Ready to accept' "$tmp/redis.log" && break
		sleep 0.1
	done
	grep -q 'Ready to accept' "$tmp/redis.log" && break
	kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rpid=
done
[ -n "$rpid" ] || { not_ok 'redis-server starts' "$(tail -3 "$tmp/redis.log")"; done_testing; exit; }
at_exit 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null'
url=redis://127.0.0.1:$port/0
A="mf-accept --config $tmp/mf.conf --state $url --state-dir $tmp/a check --phase rcpt --client 192.0.2.9 --from x@other.test --rcpt a@example.test"
B="mf-accept --config $tmp/mf.conf --state $url --state-dir $tmp/b check --phase rcpt --client 192.0.2.77 --from x@other.test --rcpt a@example.test"
t0=$(date +%s)
check_status 'redis, host A: first attempt tempfails' tempfail "$A </dev/null"
check_status 'redis, host B: retry before the delay tempfails' tempfail "$B </dev/null"
sleep $((9 - ($(date +%s) - t0)))
check_status 'redis, host B: retry after the delay passes' continue "$B </dev/null"
check_status 'redis, host A: the tuple is allowed there too' continue "$A </dev/null"
run "mf-accept --config $tmp/mf.conf --state $url greylist show"
check_grep 'redis: greylist show reads the shared tuple' "$tmp/out" '^tuple 192\.0\.2\.0/24 x@other\.test a@example\.test allowed'

# Host A is now the Postfix with mf-bridge, on Redis; host B answers
# by hand from another state directory.
mkdir -p "$tmp/a"; chown games "$tmp/a"
sed -i "s|^state-dir .*|state-dir $tmp/a\nstate $url|" "$tmp/mf.conf"
kill -HUP $bridge_pid; sleep 0.5
send redis1 frank@other.test
grey 'redis, through Postfix on host A: first attempt 4xx' redis1
B="mf-accept --config $tmp/mf.conf --state $url --state-dir $tmp/b check --phase rcpt --client 127.0.0.9 --from frank@other.test --rcpt alice@example.test"
check_status 'redis, host B: the same tuple before the delay tempfails' tempfail "$B </dev/null"
check_status 'redis, host B: greylist release there' continue "mf-accept --config $tmp/mf.conf --state $url --state-dir $tmp/b greylist release 127.0.0.0/24 frank@other.test alice@example.test"
send redis2 frank@other.test
taken 'redis, through Postfix on host A: the released retry is taken' redis2
if [ ! -e "$tmp/a/kv" ] && [ ! -e "$tmp/b/kv" ]; then ok 'redis: nothing in the state directories'; else not_ok 'redis: nothing in the state directories' "$(ls -R "$tmp/a" "$tmp/b" 2>&1)"; fi
done_testing
