#!/bin/sh
# mf-accept at RCPT and DATA behind a real Postfix and mf-bridge, DNS
# from nsd and rbldnsd on loopback: a DNSBL-listed client and an
# RHSBL-listed sender get the list's reply at RCPT; a message signed here
# by a key nsd publishes arrives with one Received-SPF (from RCPT) and one
# Authentication-Results (from DATA); a forged one is refused at the end
# of data by its domain's DMARC policy.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
. "$top/t/dns.sh"
need_postfix
need_dns
command -v openssl >/dev/null || { if [ -n "${CI:-}" ]; then not_ok 'openssl installed'; fi; echo '1..0 # SKIP openssl missing'; exit 0; }
(cd "$top" && go build -o "$tmp/sign" ./t/2420-dkim) || { not_ok 'the signing helper builds'; done_testing; exit 1; }
openssl genrsa -out "$tmp/key.pem" 2048 2>/dev/null
pieces=$(openssl rsa -in "$tmp/key.pem" -pubout -outform DER 2>/dev/null | base64 -w0 | fold -w 200 | sed 's/.*/"&"/' | tr '\n' ' ')
cat >"$dns/test.zone" <<Z
sel._domainkey.signed TXT "v=DKIM1; k=rsa; p=" $pieces
signed          TXT   "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc.signed   TXT   "v=DMARC1; p=reject"
forged          TXT   "v=spf1 ip4:192.0.2.1 -all"
_dmarc.forged   TXT   "v=DMARC1; p=reject"
Z
printf '127.0.0.2\n127.0.0.5 :127.0.0.2:Listed for the test\n' >"$dns/rbl/bl.txt"
printf 'test\nspammer.test\n' >"$dns/rbl/rhs.txt"
dns_start bl.test:ip4set:bl.txt rhs.test:dnset:rhs.txt || { not_ok 'DNS servers start'; done_testing; exit 1; }
mkdir -p "$tmp/state"; chown games "$tmp/state"
touch "$tmp/decisions.log"; chown nobody "$tmp/decisions.log"
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
bridge.decision-log $tmp/decisions.log
accept.resolver 127.0.0.1:$nsd_port
accept.dns-timeout 2s
accept.hostname mx.example.test
accept.dnsbl bl.test server=127.0.0.1:$rbl_port reply="554 5.7.1 Client listed"
accept.rhsbl rhs.test server=127.0.0.1:$rbl_port on=sender reply="554 5.7.1 Sender domain listed"
accept.check spf-fail action=tag
accept.dmarc
accept.check dmarc-reject reply="550 5.7.1 Rejected by the sender domain's DMARC policy"
bridge.stage accept rcpt,data mf-accept check
CONF
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }

send() { name=$1; shift; swaks --server 127.0.0.1:$pf_port --to alice@example.test "$@" >"$tmp/$name" 2>&1; }

send listed --local-interface 127.0.0.5 --from bob@signed.test
check_grep 'a DNSBL-listed client: the list'"'"'s reply at RCPT' "$tmp/listed" '<\*\* +554 5\.7\.1 Client listed'
check_grep '... after RCPT TO' "$tmp/listed" '^ -> RCPT TO:<alice@example\.test>'
send rhs --from bob@spammer.test
check_grep 'an RHSBL-listed sender: refused at RCPT' "$tmp/rhs" '<\*\* +554 5\.7\.1 Sender domain listed'

printf 'From: Bob <bob@signed.test>\nTo: alice@example.test\nSubject: signed\nDate: Tue, 01 Dec 2026 10:00:00 +0000\nMessage-ID: <signed@signed.test>\n\nHello Alice.\n' |
	"$tmp/sign" "$tmp/key.pem" signed.test sel >"$tmp/signed.eml"
send signed --from bob@signed.test --data "$tmp/signed.eml"
check_grep 'a signed message is taken' "$tmp/signed" '<- +250 2\.0\.0 Ok: queued'
pf_wait_delivered 1
m=$(pf_mail 'Subject: signed'); m=${m:-/dev/null}
check_out '... with one Received-SPF' 1 "grep -c '^Received-SPF:' $m"
check_grep '... pass, from the RCPT phase' "$m" '^Received-SPF: pass client-ip=127\.0\.0\.1; envelope-from="bob@signed\.test";'
check_out '... with one Authentication-Results' 1 "grep -c '^Authentication-Results:' $m"
sed -n '/^Authentication-Results:/,/^[^	]/p' "$m" | sed '$d' >"$tmp/ar"
check_out '... spf, dkim and dmarc pass' "Authentication-Results: mx.example.test;
	spf=pass smtp.mailfrom=signed.test;
	dkim=pass header.d=signed.test header.s=sel;
	dmarc=pass (p=reject) header.from=signed.test" "cat $tmp/ar"

printf 'From: CEO <ceo@forged.test>\nTo: alice@example.test\nSubject: forged\nDate: Tue, 01 Dec 2026 10:00:00 +0000\nMessage-ID: <forged@forged.test>\n\nPay now.\n' >"$tmp/forged.eml"
send forged --from ceo@forged.test --data "$tmp/forged.eml"
check_grep 'a forged From with p=reject: refused at the end of data' "$tmp/forged" '<\*\* +550 5\.7\.1 Rejected by the sender domain'"'"'s DMARC policy'
i=0; until grep -q 'ceo@forged' "$tmp/decisions.log" || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
check_grep 'the decision log records the refusal at data by the accept stage' "$tmp/decisions.log" '"mail_from":"ceo@forged\.test".*\{"name":"accept","phase":"data","action":"reject","exit":100,.*"reply":"550 5\.7\.1 Rejected by the sender'
done_testing
