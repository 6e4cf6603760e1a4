#!/bin/sh
# mf-accept limits and header sanity, on bare envelopes and messages:
# recipients per message, size announced at MAIL and real at data, the
# null sender to several recipients, missing and duplicate fields, From
# with several addresses and no Sender, our own domain in From. No DNS:
# the resolver is a port nothing answers on, and no check here asks it.
. "$(dirname "$0")/lib.sh"
cat >"$tmp/mf.conf" <<'CONF'
accept.resolver 127.0.0.1:9
accept.dns-timeout 1s
accept.max-rcpts 2
accept.max-size 2k
accept.check max-rcpts
accept.check max-size reply="552 5.3.4 Message too big"
accept.check null-sender-rcpts
accept.check header-missing
accept.check header-duplicate action=tag
accept.check header-from-sender
accept.check header-own-domain
accept.own-domain example.test
accept.allow-net 10.0.0.0/8
CONF
A="mf-accept --config $tmp/mf.conf check --client 192.0.2.10"
check_status 'two recipients: within the limit' continue "$A --phase rcpt --from bob@example.org --rcpt a@example.test --rcpt b@example.test </dev/null"
check_status 'a third recipient: tempfail' tempfail "$A --phase rcpt --from bob@example.org --rcpt a@example.test --rcpt b@example.test --rcpt c@example.test </dev/null"
check_grep '... max-rcpts' "$tmp/out" 'check=max-rcpts'
check_status 'the null sender to one recipient' continue "$A --phase rcpt --from '' --rcpt a@example.test </dev/null"
check_status 'the null sender to two: refused' reject "$A --phase rcpt --from '' --rcpt a@example.test --rcpt b@example.test </dev/null"
check_grep '... null-sender-rcpts' "$tmp/out" 'check=null-sender-rcpts'
check_status 'SIZE= announced at MAIL above max-size: refused' reject "$A --phase mail --from bob@example.org --size 4096 </dev/null"
check_grep '... with its reply' "$tmp/out" '^Mf-Verdict: reject 552 5\.3\.4 Message too big$'
check_status 'SIZE= within it' continue "$A --phase mail --from bob@example.org --size 1000 </dev/null"

hdr() { printf '%s\n' "$@"; echo; echo 'Body.'; }
D="$A --phase data --from bob@example.org --rcpt a@example.test"
hdr 'From: bob@example.org' 'Date: Tue, 01 Dec 2026 10:00:00 +0000' 'Message-ID: <1@example.org>' >"$tmp/good.eml"
check_status 'a sane header' continue "$D <$tmp/good.eml"
{ cat "$tmp/good.eml"; head -c 3000 /dev/zero | tr '\0' x; echo; } >"$tmp/big.eml"
check_status 'a message over max-size at data: refused' reject "$D <$tmp/big.eml"
hdr 'From: bob@example.org' >"$tmp/missing.eml"
check_status 'Date and Message-ID missing: refused' reject "$D <$tmp/missing.eml"
check_grep '... naming them' "$tmp/err" 'header-missing .*missing=Date,Message-ID'
hdr 'From: bob@example.org' 'Date: x' 'Message-ID: <1@x>' 'Subject: a' 'Subject: b' >"$tmp/dup.eml"
check_status 'a duplicate Subject: tagged' continue "$D <$tmp/dup.eml"
check_grep '... X-Mf-Accept in the message' "$tmp/out" '^X-Mf-Accept: header-duplicate$'
hdr 'From: bob@example.org, carol@example.org' 'Date: x' 'Message-ID: <1@x>' >"$tmp/multi.eml"
check_status 'From with two addresses and no Sender: refused' reject "$D <$tmp/multi.eml"
hdr 'From: bob@example.org, carol@example.org' 'Sender: bob@example.org' 'Date: x' 'Message-ID: <1@x>' >"$tmp/sender.eml"
check_status '... with a Sender: taken' continue "$D <$tmp/sender.eml"
hdr 'From: The Boss <boss@example.test>' 'Date: x' 'Message-ID: <1@x>' >"$tmp/own.eml"
check_status 'our own domain in From from outside: refused' reject "$D <$tmp/own.eml"
check_grep '... header-own-domain' "$tmp/out" 'check=header-own-domain'
check_status '... from an authenticated client: taken' continue "$D --auth-user boss <$tmp/own.eml"
check_status '... from an allow-listed network: taken' continue "mf-accept --config $tmp/mf.conf check --client 10.1.2.3 --phase data --from bob@example.org --rcpt a@example.test <$tmp/own.eml"
check_status 'output=message: the message comes out whole' continue "$D --output message <$tmp/good.eml"
if cmp -s "$tmp/out" "$tmp/good.eml"; then ok '... byte for byte'; else not_ok '... byte for byte' "$(diff "$tmp/good.eml" "$tmp/out")"; fi
check_refused 'a client address that is no address: an error' 'client address' "$A --client not-an-ip --phase rcpt --rcpt a@example.test </dev/null"
done_testing
