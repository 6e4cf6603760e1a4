#!/bin/sh
# DKIM and DMARC at data, against nsd: messages signed here (go-msgauth,
# t/2420-dkim) by a key the zone publishes, DMARC records with reject and
# quarantine policies, the SPF result carried from the mail phase, and a
# real signed message whose signature cannot verify offline. The
# Authentication-Results field is checked field by field.
. "$(dirname "$0")/lib.sh"
. "$top/t/dns.sh"
need_dns
command -v openssl >/dev/null || { if [ -n "${CI:-}" ]; then not_ok 'openssl installed'; fi; echo '1..0 # SKIP openssl missing'; exit 0; }
(cd "$top" && go build -o "$tmp/sign" ./t/2420-dkim) || { not_ok 'the signing helper builds'; done_testing; exit 1; }

openssl genrsa -out "$tmp/key.pem" 2048 2>/dev/null
pub=$(openssl rsa -in "$tmp/key.pem" -pubout -outform DER 2>/dev/null | base64 -w0)
# A TXT string holds at most 255 bytes: the key goes in pieces.
pieces=$(echo "$pub" | fold -w 200 | sed 's/.*/"&"/' | tr '\n' ' ')
cat >"$dns/test.zone" <<Z
sel._domainkey.signed TXT "v=DKIM1; k=rsa; p=" $pieces
signed          TXT   "v=spf1 ip4:192.0.2.10 -all"
_dmarc.signed   TXT   "v=DMARC1; p=reject; adkim=r; aspf=r"
forged          TXT   "v=spf1 ip4:198.51.100.1 -all"
_dmarc.forged   TXT   "v=DMARC1; p=reject"
quar            TXT   "v=spf1 ip4:198.51.100.1 -all"
_dmarc.quar     TXT   "v=DMARC1; p=quarantine"
plain           TXT   "v=spf1 ip4:192.0.2.10 -all"
Z
# The real message's domain, with its DMARC record but not its key.
dns_zones=spamassassin.org
echo '_dmarc.dmarc3 TXT "v=DMARC1; p=reject"' >"$dns/spamassassin.org.zone"
printf '127.0.0.2\n' >"$dns/rbl/bl.txt"
dns_start bl.test:ip4set:bl.txt || { not_ok 'DNS servers start'; done_testing; exit 1; }

cat >"$tmp/mf.conf" <<CONF
accept.resolver 127.0.0.1:$nsd_port
accept.dns-timeout 2s
accept.dmarc
accept.hostname mx.example.test
accept.check dmarc-reject reply="550 5.7.1 DMARC policy says no"
accept.check dmarc-quarantine
CONF
mkmsg() { # FROM SUBJECT
	printf 'From: Bob <%s>\nTo: alice@example.test\nSubject: %s\nDate: Tue, 01 Dec 2026 10:00:00 +0000\nMessage-ID: <%s@example>\n\nHello Alice,\nthis is a test.\n' "$1" "$2" "$2"
}
data() { # FROM-ENVELOPE CLIENT
	echo "mf-accept --config $tmp/mf.conf check --phase data --client $2 --helo mail.signed.test --from $1 --rcpt alice@example.test"
}
ar() { sed -n '/^Authentication-Results:/,/^[^	]/p' "$tmp/out" | sed '$d'; }

mkmsg bob@signed.test one | "$tmp/sign" "$tmp/key.pem" signed.test sel >"$tmp/signed.eml"
check_grep 'the helper signed the message' "$tmp/signed.eml" '^DKIM-Signature: '
check_status 'signed, aligned, SPF pass: taken' continue "$(data bob@signed.test 192.0.2.10) <$tmp/signed.eml"
check_out 'Authentication-Results, field by field' "Authentication-Results: mx.example.test;
	spf=pass smtp.mailfrom=signed.test;
	dkim=pass header.d=signed.test header.s=sel;
	dmarc=pass (p=reject) header.from=signed.test" "$(data bob@signed.test 192.0.2.10) <$tmp/signed.eml | sed -n '/^Authentication-Results:/,/^[^	]/p' | sed '\$d'"
run "$(data bob@signed.test 192.0.2.10) <$tmp/signed.eml"
cp "$tmp/out" "$tmp/signed.out"
check_out 'one Authentication-Results field' 1 "grep -c '^Authentication-Results:' $tmp/signed.out"
check_grep '... and Received-SPF, in the message' "$tmp/signed.out" '^Received-SPF: pass client-ip=192\.0\.2\.10;'

# DKIM alone carries DMARC when SPF fails.
check_status 'signed, SPF fail: DKIM aligns, taken' continue "$(data bob@signed.test 198.51.100.9) <$tmp/signed.eml"
check_grep '... spf=fail' "$tmp/out" '^	spf=fail smtp.mailfrom=signed\.test;$'
check_grep '... dmarc=pass' "$tmp/out" '^	dmarc=pass \(p=reject\) header\.from=signed\.test$'

# Relaxed alignment: From a subdomain, the organizational domain's policy.
mkmsg bob@news.signed.test sub | "$tmp/sign" "$tmp/key.pem" signed.test sel >"$tmp/sub.eml"
check_status 'From a subdomain, signed by the parent: relaxed alignment passes' continue "$(data bounce@nospf.test 198.51.100.9) <$tmp/sub.eml"
check_grep '... dmarc=pass for header.from=news.signed.test' "$tmp/out" '^	dmarc=pass \(p=reject\) header\.from=news\.signed\.test$'

# A body changed after signing.
sed 's/this is a test/this is a changed test/' "$tmp/signed.eml" >"$tmp/changed.eml"
check_status 'body changed after signing, SPF fail: DMARC reject' reject "$(data bob@signed.test 198.51.100.9) <$tmp/changed.eml"
check_grep '... dkim=fail with a reason' "$tmp/out" '^	dkim=fail header\.d=signed\.test header\.s=sel reason="[^"]*body hash'
check_grep '... dmarc=fail' "$tmp/out" '^	dmarc=fail \(p=reject\) header\.from=signed\.test'
check_grep '... refused with the reply configured' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 DMARC policy says no$'

# Unsigned, SPF fail: the policies.
mkmsg ceo@forged.test forged >"$tmp/forged.eml"
check_status 'unsigned From forged.test (p=reject): refused' reject "$(data ceo@forged.test 192.0.2.10) <$tmp/forged.eml"
check_grep '... dkim=none' "$tmp/out" '^	dkim=none;$'
mkmsg ceo@quar.test quar >"$tmp/quar.eml"
check_status 'unsigned From quar.test (p=quarantine): held' accept "$(data ceo@quar.test 192.0.2.10) <$tmp/quar.eml"
check_grep '... quarantine verdict' "$tmp/out" '^Mf-Verdict: quarantine mf-accept dmarc-quarantine$'
mkmsg bob@plain.test plain >"$tmp/plain.eml"
check_status 'no DMARC record: taken' continue "$(data bob@plain.test 192.0.2.10) <$tmp/plain.eml"
check_grep '... dmarc=none' "$tmp/out" '^	dmarc=none header\.from=plain\.test$'

# The SPF result of the mail phase travels in the envelope to data.
run "mf-accept --config $tmp/mf.conf check --phase mail --client 192.0.2.10 --helo mail.signed.test --from bob@signed.test </dev/null"
check_grep 'mail phase: Received-SPF in Mf-Add-Header' "$tmp/out" '^Mf-Add-Header: Received-SPF: pass '
# The client is changed too: asked again, SPF would fail.
sed 's/^Mf-Stage: mail$/Mf-Stage: data/; s/^Mf-Client-Addr: .*/Mf-Client-Addr: 198.51.100.9/' "$tmp/out" | { sed '$d'; echo 'Mf-Rcpt-To: <alice@example.test>'; echo; cat "$tmp/changed.eml"; } >"$tmp/stream"
check_status 'data phase: the carried pass aligns SPF' continue "mf-accept --config $tmp/mf.conf check --input stream <$tmp/stream"
check_grep '... spf=pass from the envelope, not asked again' "$tmp/out" '^	spf=pass smtp\.mailfrom=signed\.test;$'

# A real message, signed by its sender years ago: no key here now.
real=$top/../shared/data/spamassassin/t/data/nice/dmarc/rejectok.eml
[ -r "$real" ] || real=/work/shared/data/spamassassin/t/data/nice/dmarc/rejectok.eml
if [ -r "$real" ]; then
	check_status 'real signed message, key gone, p=reject: refused' reject "$(data test@dmarc3.spamassassin.org 64.142.3.173) <$real"
	check_grep '... dkim=permerror for header.d=dmarc3.spamassassin.org' "$tmp/out" '^	dkim=permerror header\.d=dmarc3\.spamassassin\.org header\.s=selector1 reason="'
	check_grep '... spf=none' "$tmp/out" '^	spf=none smtp\.mailfrom=dmarc3\.spamassassin\.org;$'
	check_grep '... dmarc=fail' "$tmp/out" '^	dmarc=fail \(p=reject\) header\.from=dmarc3\.spamassassin\.org$'
else
	skip 'real signed message' '../shared/data is not here'
fi

# Authenticated senders are not checked.
check_status 'authenticated: no DMARC' continue "$(data ceo@forged.test 192.0.2.10) --auth-user ceo <$tmp/forged.eml"
check_nogrep '... no Authentication-Results' "$tmp/out" '^Authentication-Results:'
done_testing
