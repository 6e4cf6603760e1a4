#!/bin/sh
# A bare message with its envelope from flags or from qmail's environment.
. "$(dirname "$0")/lib.sh"

mkdir "$tmp/lists"
cat >"$tmp/lists/10-allow.list" <<'L'
match: client-addr
action: allow
127.0.0.0/8
L
cat >"$tmp/lists/20-block.list" <<'L'
match: client-addr sender rcpt
action: block
reply: 554 5.7.1 Go away
192.0.2.0/24
spammer@example.net
@blocked.example
L
cat >"$tmp/lists/30-defer.list" <<'L'
match: helo
action: tempblock
.slow.example
L
L="mf-lists --dir $tmp/lists check"

check_exit 'no hit: continue' 0 "$L --client 203.0.113.9 --from a@example.org --rcpt b@example.com <$msg/plain.eml"
check_exit 'allow list: accept' 99 "$L --client 127.0.0.1 <$msg/plain.eml"
check_exit 'blocked network: reject' 100 "$L --client 192.0.2.200 <$msg/plain.eml"
check_grep 'reject carries the list reply' "$tmp/out" '^Mf-Verdict: reject 554 5\.7\.1 Go away$'
check_exit 'blocked sender: reject' 100 "$L --client 203.0.113.9 --from '<Spammer@Example.NET>' <$msg/plain.eml"
check_exit 'blocked recipient domain: reject' 100 "$L --client 203.0.113.9 --rcpt ok@example.com --rcpt x@blocked.example <$msg/plain.eml"
check_exit 'HELO below a deferred domain: tempfail' 111 "$L --helo mx1.slow.example <$msg/plain.eml"
check_grep 'tempfail gets the generic reply' "$tmp/out" '^Mf-Verdict: tempfail 451 4\.7\.1 Try again later$'
check_exit 'the deferred domain itself is not below itself' 0 "$L --helo slow.example <$msg/plain.eml"
check_exit 'first matching list wins (allow before block)' 99 "$L --client 127.0.0.1 --from spammer@example.net <$msg/plain.eml"

check_exit 'qmail SENDER from the environment' 100 "SENDER=spammer@example.net $L <$msg/plain.eml"
check_exit 'qmail TCPREMOTEIP from the environment' 100 "TCPREMOTEIP=192.0.2.1 $L <$msg/plain.eml"
check_exit 'qmail RECIPIENT from the environment' 100 "RECIPIENT=u@blocked.example $L <$msg/plain.eml"
check_exit 'a flag beats the qmail environment' 0 "TCPREMOTEIP=192.0.2.1 $L --client 203.0.113.9 <$msg/plain.eml"

check_exit 'bare message in, stream out' 0 "$L --client 203.0.113.9 --from a@example.org --rcpt b@example.com <$msg/plain.eml"
cat >"$tmp/want" <<'W'
Mf-Stream: 1
Mf-Stage: data
Mf-Client-Addr: 203.0.113.9
Mf-Mail-From: <a@example.org>
Mf-Rcpt-To: <b@example.com>
W
sed '/^$/q' "$tmp/out" | grep -v '^Mf-Trace: mf-lists continue [0-9.]*ms$' | sed '/^$/d' >"$tmp/got"
if cmp -s "$tmp/want" "$tmp/got"; then ok 'envelope written from the flags'; else not_ok 'envelope written from the flags' "$(cat "$tmp/got")"; fi
sed '1,/^$/d' "$tmp/out" >"$tmp/body"
check 'message after the envelope is byte for byte the input' "cmp $tmp/body $msg/plain.eml"

for m in plain.eml crlf-folded-from.eml nonspam.eml; do
	check "--output message leaves $m byte for byte" "$L --output message --client 203.0.113.9 <$msg/$m | cmp - $msg/$m"
done
check_out '--output none writes nothing' '' "$L --output none --client 192.0.2.1 <$msg/plain.eml"

check_exit 'an empty message is a message' 0 "$L --client 203.0.113.9 </dev/null"
check_exit 'a bare message that starts like a stream, read as a message' 0 "printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: accept\n\nbody\n' | $L --input message --client 203.0.113.9"
check_grep '... keeps its own bytes as message' "$tmp/out" '^Mf-Verdict: accept$'
check_exit '... and is not taken for a decided stream' 100 "printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Verdict: accept\n\nbody\n' | $L --input message --client 192.0.2.3"
done_testing
