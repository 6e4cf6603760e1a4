#!/bin/sh
# Two hosts sharing one redis-server: mf-quota enforces one combined
# limit, and a block one host adds is seen by mf-lists on the other.
. "$(dirname "$0")/lib.sh"
. "$top/t/redis.sh"

if ! command -v redis-server >/dev/null; then
	if [ -n "${CI:-}" ]; then not_ok 'redis-server missing (apt-get install redis-server)'; else skip 'redis tests' 'redis-server missing (apt-get install redis-server)'; fi
	done_testing; exit
fi
redis_start --requirepass s3cret
[ -n "$rpid" ] || { not_ok 'redis-server did not start' "$(tail -3 "$tmp/redis.log")"; done_testing; exit; }
at_exit 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null'

url=redis://:s3cret@127.0.0.1:$port/0
printf 'quota.rule shared key=sender limit=4/1h reply="451 4.7.1 Site-wide limit"\nquota.rule flood key=client limit=6/1h action=block:abusers\n' >"$tmp/mf.conf"
# Host A and host B: separate state directories, one Redis.
A="mf-quota -c $tmp/mf.conf --state $url --state-dir $tmp/a check --output none --client 192.0.2.9 --rcpt b@example.com"
B="mf-quota -c $tmp/mf.conf --state $url --state-dir $tmp/b check --output none --client 192.0.2.9 --rcpt b@example.com"
check_exit 'host A, message 1' 0 "$A --from s@example.org --queue-id Q1 <$msg/plain.eml"
check_exit 'host B, message 2' 0 "$B --from s@example.org --queue-id Q2 <$msg/plain.eml"
check_exit 'host A, message 3' 0 "$A --from s@example.org --queue-id Q3 <$msg/plain.eml"
check_exit 'host B, message 4' 0 "$B --from s@example.org --queue-id Q4 <$msg/plain.eml"
check_exit 'host A, message 5: over the combined limit' 111 "$A --from s@example.org --queue-id Q5 <$msg/plain.eml"
check_grep '... with the configured text' "$tmp/err" 'tempfail: rule shared key s@example.org: 5 > 4/1h'
check_exit 'host B, message 6: over it too' 111 "$B --from s@example.org --queue-id Q6 <$msg/plain.eml"
[ ! -e "$tmp/a/kv" ] || [ -z "$(ls "$tmp/a/kv")" ] && ok 'nothing was kept in the state directory' || not_ok 'nothing was kept in the state directory' "$(ls "$tmp/a/kv")"
run "mf-quota -c $tmp/mf.conf --state $url show s@example.org"
check_grep 'show reads the shared counts' "$tmp/out" '^shared +s@example\.org +4/4 +per 1h'

for i in 1 2 3; do $A --from "o$i@example.org" --queue-id "R$i" <"$msg/plain.eml" 2>/dev/null; done
check_exit 'host A: the client passes the block rule' 100 "$A --from o4@example.org --queue-id R4 <$msg/plain.eml"
mkdir "$tmp/lists"
check_exit 'mf-lists on host B blocks the client' 100 "mf-lists --state $url --state-dir $tmp/b --dir $tmp/lists check --output none --client 192.0.2.9 </dev/null"
run "mf-lists --state $url --dir $tmp/lists show"
check_grep 'mf-lists show lists it' "$tmp/out" '^abusers	client-addr 192\.0\.2\.9	expires .*by mf-quota'
check 'mf-lists del on host B' "mf-lists --state $url --dir $tmp/lists del abusers 192.0.2.9"
check_exit '... and the client is let in again' 0 "mf-lists --state $url --state-dir $tmp/a --dir $tmp/lists check --output none --client 192.0.2.9 </dev/null"

check_exit 'a wrong password: exit 75' 75 "mf-quota --state redis://:wrong@127.0.0.1:$port/0 show"
check_grep '... saying why' "$tmp/err" 'WRONGPASS|invalid password'
# TLS: rediss:// with the server's certificate as the trusted root.
if command -v openssl >/dev/null; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
	tport=$((port + 1))
	: >"$tmp/tls.log"
	redis-server --port 0 --tls-port "$tport" --bind 127.0.0.1 --tls-cert-file "$tmp/cert.pem" --tls-key-file "$tmp/key.pem" \
		--tls-ca-cert-file "$tmp/cert.pem" --tls-auth-clients no --save '' --appendonly no --dir "$tmp" >"$tmp/tls.log" 2>&1 &
	tpid=$!
	at_exit 'kill $tpid 2>/dev/null'
	for i in 1 2 3 4 5 6 7 8 9 10; do grep -q 'Ready to accept' "$tmp/tls.log" && break; sleep 0.1; done
	T="mf-quota -c $tmp/mf.conf --state rediss://127.0.0.1:$tport/0 check --output none --client 192.0.2.9 --rcpt b@example.com --from t@example.org"
	check_exit 'TLS: counted over rediss://' 0 "SSL_CERT_FILE=$tmp/cert.pem $T --queue-id T1 <$msg/plain.eml"
	check_exit '... an untrusted certificate is refused: 75' 75 "$T --queue-id T2 <$msg/plain.eml"
	check_grep '... saying why' "$tmp/err" 'certificate'
	kill $tpid; wait $tpid 2>/dev/null
elif [ -n "${CI:-}" ]; then not_ok 'TLS' 'openssl missing'
else skip 'TLS' 'openssl missing'
fi

kill $rpid; wait $rpid 2>/dev/null
check_exit 'Redis down: exit 75, not a verdict' 75 "$A --lock-timeout 1s --from s@example.org --queue-id Q7 <$msg/plain.eml"
check_grep '... saying why' "$tmp/err" 'redis'
done_testing
