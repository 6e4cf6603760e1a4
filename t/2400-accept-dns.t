#!/bin/sh
# mf-accept check against real DNS servers on loopback: nsd answers PTR,
# A, MX and SPF records of the test domains, rbldnsd serves a DNSBL (IPv4
# and IPv6), an RHSBL, a DNSWL and a zone that lists its own "not listed"
# test entry. A stopped server stands for one that never answers.
. "$(dirname "$0")/lib.sh"
. "$top/t/dns.sh"
need_dns

cat >"$dns/test.zone" <<'Z'
mail.good       A     192.0.2.10
mail.liar       A     192.0.2.99
dyn-192-0-2-12.isp A  192.0.2.12
mail.spammer    A     192.0.2.7
mail.wl         A     192.0.2.15
mail.wl         TXT   "v=spf1 a -all"
mail.policy     A     192.0.2.14
mail.policy     TXT   "v=spf1 a -all"
good            TXT   "v=spf1 ip4:192.0.2.10 -all"
fail            TXT   "v=spf1 ip4:198.51.100.1 -all"
soft            TXT   "v=spf1 ip4:198.51.100.1 ~all"
perm            TXT   "v=spf1 bogus:198.51.100.1 -all"
none            A     192.0.2.10
viamx           MX    10 mail.good.test.
viamx           TXT   "v=spf1 " "mx -all"
spammer         TXT   "v=spf1 ip4:192.0.2.0/24 -all"
Z
cat >"$dns/rev.zone" <<'Z'
10 PTR mail.good.test.
11 PTR mail.liar.test.
12 PTR dyn-192-0-2-12.isp.test.
7  PTR mail.spammer.test.
14 PTR mail.policy.test.
15 PTR mail.wl.test.
Z
# IPv6 reverse DNS: 2001:db8::10 confirmed, 2001:db8::11 not.
dns_zones=8.b.d.0.1.0.0.2.ip6.arpa
cat >"$dns/8.b.d.0.1.0.0.2.ip6.arpa.zone" <<'Z'
0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mail6.good.test.
1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mail.liar.test.
Z
echo 'mail6.good AAAA 2001:db8::10' >>"$dns/test.zone"
cat >"$dns/rbl/bl.txt" <<'Z'
:127.0.0.2:Listed by bl.test, see http://bl.test/$
127.0.0.2
192.0.2.7
192.0.2.14 :127.0.0.10:Policy listing
Z
cat >"$dns/rbl/bl6.txt" <<'Z'
:127.0.0.2:Listed by bl.test (IPv6)
2001:db8::7
Z
printf '127.0.0.2 :127.0.10.2:\n192.0.2.15 :127.0.10.2:\n' >"$dns/rbl/wl.txt"
printf ':127.0.0.2:Domain listed\ntest\nspammer.test\n.spammer.test\n' >"$dns/rbl/rhs.txt"
printf '127.0.0.0/24 :127.0.0.2:\n192.0.2.10 :127.0.0.2:\n' >"$dns/rbl/bad.txt"
printf ':127.0.0.2:\ndbltest.test\nbad.example\n' >"$dns/rbl/rhs2.txt"
dns_start bl.test:ip4set:bl.txt bl.test:ip6trie:bl6.txt wl.test:ip4set:wl.txt rhs.test:dnset:rhs.txt bad.test:ip4set:bad.txt rhs2.test:dnset:rhs2.txt ||
	{ not_ok 'DNS servers start'; done_testing; exit 1; }
ok "nsd on $nsd_port and rbldnsd on $rbl_port answer"

conf=$tmp/mf.conf
cat >"$conf" <<CONF
accept.resolver 127.0.0.1:$nsd_port
accept.dns-timeout 2s
accept.dnsbl bl.test server=127.0.0.1:$rbl_port codes=127.0.0.2-127.0.0.9 reply="554 5.7.1 Client listed"
accept.dnsbl bad.test server=127.0.0.1:$rbl_port
accept.rhsbl rhs.test server=127.0.0.1:$rbl_port on=sender,helo
accept.dnswl wl.test server=127.0.0.1:$rbl_port
accept.check helo-syntax
accept.check helo-bare-ip
accept.check helo-own
accept.check helo-literal
accept.check rdns-missing action=tempfail
accept.check fcrdns action=reject reply="550 5.7.25 Reverse DNS does not match"
accept.check rdns-generic action=tag
accept.check spf-fail
accept.check spf-softfail action=tag
accept.check spf-permerror action=tag
accept.own-name mx.example.test
accept.own-addr 192.0.2.1
CONF
ac() { echo "mf-accept --config $conf check --phase rcpt --rcpt alice@example.test $* </dev/null"; }

check_status 'a listed client is refused' reject "$(ac --client 192.0.2.7 --helo mail.spammer.test --from bob@spammer.test)"
check_grep '... with the list'"'"'s reply' "$tmp/out" '^Mf-Verdict: reject 554 5\.7\.1 Client listed$'
check_grep '... and the check named in Mf-Trace' "$tmp/out" '^Mf-Trace: mf-accept reject check=dnsbl:bl.test '
check_grep '... the log says what the list answered' "$tmp/err" 'dnsbl:bl.test .*answer=127\.0\.0\.2 text="Listed by bl.test, see http://bl.test/192.0.2.7"'
check_status 'an unlisted client with a confirmed PTR goes on' continue "$(ac --client 192.0.2.10 --helo mail.good.test --from bob@good.test)"
check_grep '... with an SPF pass carried in Mf-Add-Header' "$tmp/out" '^Mf-Add-Header: Received-SPF: pass client-ip=192\.0\.2\.10; envelope-from="bob@good\.test"; helo=mail\.good\.test;'
check_status 'an IPv6 client listed in nibble form is refused' reject "$(ac --client 2001:db8::7 --helo mail.good.test --from '""')"
check_grep '... by bl.test' "$tmp/out" 'check=dnsbl:bl.test'
run "$(ac --client 2001:db8::8 --helo mail.good.test --from '""')"
check_nogrep 'an IPv6 client not listed is not refused by the list' "$tmp/out" 'check=dnsbl'
check_status 'a return code outside the zone filter does not count' continue "$(ac --client 192.0.2.14 --helo mail.policy.test --from bob@mail.policy.test)"
check_status 'RHSBL: a listed sender domain is refused' reject "$(ac --client 192.0.2.10 --helo mail.good.test --from bob@spammer.test)"
check_grep '... by rhs.test' "$tmp/out" 'check=rhsbl:rhs.test'
check_status 'RHSBL: a listed HELO domain is refused' reject "$(ac --client 192.0.2.10 --helo host.spammer.test --from bob@good.test)"
check_grep '... by rhs.test' "$tmp/err" 'rhsbl:rhs.test .*key=host\.spammer\.test'
check_status 'a zone listing its own 127.0.0.1 test entry is not trusted' continue "$(ac --client 192.0.2.10 --helo mail.good.test --from bob@good.test)"
check_grep '... and said unhealthy in the log' "$tmp/err" 'dnsbl:bad\.test: unhealthy'
check_grep '... remembered for the next messages' "$tmp/state/dnsbl-health" "^dnsbl:bad\\.test@127\\.0\\.0\\.1:$rbl_port [0-9]+ 0\$"
check_grep '... as the healthy ones are' "$tmp/state/dnsbl-health" "^dnsbl:bl\\.test@127\\.0\\.0\\.1:$rbl_port [0-9]+ 1\$"
check_status 'DNSWL: a listed client with a bad HELO goes on' continue "$(ac --client 192.0.2.15 --helo localhost --from bob@mail.wl.test)"
check_grep '... exempt by the DNSWL' "$tmp/out" 'exempt=dnswl:wl\.test'
check_status '... the same HELO from another client is refused' reject "$(ac --client 192.0.2.10 --helo localhost --from bob@good.test)"
check_grep '... by helo-syntax' "$tmp/out" 'check=helo-syntax'
check_status 'HELO: a bare IP address' reject "$(ac --client 192.0.2.10 --helo 192.0.2.10 --from bob@good.test)"
check_grep '... helo-bare-ip' "$tmp/out" 'check=helo-bare-ip'
check_status 'HELO: our own name' reject "$(ac --client 192.0.2.10 --helo MX.example.test --from bob@good.test)"
check_grep '... helo-own' "$tmp/out" 'check=helo-own'
check_status 'HELO: a literal of our own address' reject "$(ac --client 192.0.2.10 --helo '[192.0.2.1]' --from bob@good.test)"
check_status 'HELO: a literal that is not the client' reject "$(ac --client 192.0.2.10 --helo '[192.0.2.99]' --from bob@good.test)"
check_grep '... helo-literal' "$tmp/out" 'check=helo-literal'
check_status 'HELO: the client'"'"'s own literal goes on' continue "$(ac --client 192.0.2.10 --helo '[192.0.2.10]' --from bob@good.test)"
check_status 'PTR missing: tempfail as configured' tempfail "$(ac --client 192.0.2.13 --helo mail.good.test --from '""')"
check_grep '... rdns-missing' "$tmp/out" 'check=rdns-missing'
check_status 'PTR not forward-confirmed: refused' reject "$(ac --client 192.0.2.11 --helo mail.liar.test --from '""')"
check_grep '... with the rule'"'"'s reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.25 Reverse DNS does not match$'
check_status 'IPv6: a PTR that resolves back (AAAA) goes on' continue "$(ac --client 2001:db8::10 --helo mail6.good.test --from '""')"
check_status 'IPv6: a PTR that does not: refused' reject "$(ac --client 2001:db8::11 --helo mail6.good.test --from '""')"
check_grep '... by fcrdns' "$tmp/out" 'check=fcrdns'
check_status 'a generic PTR name is tagged' continue "$(ac --client 192.0.2.12 --helo '[192.0.2.12]' --from '""')"
check_grep '... in X-Mf-Accept' "$tmp/out" '^Mf-Add-Header: X-Mf-Accept: rdns-generic$'

spf() { check_status "SPF $1 for $2" "$3" "$(ac --client 192.0.2.10 --helo mail.good.test --from "bob@$2")"
	check_grep "... Received-SPF: $1" "$tmp/out" "^Mf-Add-Header: Received-SPF: $1 client-ip=192\\.0\\.2\\.10;"; }
spf pass good.test continue
spf fail fail.test reject
check_grep '... spf-fail refused it' "$tmp/out" 'check=spf-fail .*spf=fail'
spf softfail soft.test continue
check_grep '... tagged' "$tmp/out" '^Mf-Add-Header: X-Mf-Accept: spf-softfail$'
spf none none.test continue
spf permerror perm.test continue
spf pass viamx.test continue
check_status 'SPF for the null sender checks the HELO identity' continue "$(ac --client 192.0.2.10 --helo good.test --from '""')"
check_grep '... identity=helo' "$tmp/out" 'Received-SPF: pass client-ip=192\.0\.2\.10; helo=good\.test; .*identity=helo'

# At a later phase the result carried in the envelope is not asked again.
printf 'Mf-Stream: 1\nMf-Stage: rcpt\nMf-Client-Addr: 192.0.2.10\nMf-Helo: mail.good.test\nMf-Mail-From: <bob@fail.test>\nMf-Rcpt-To: <a@example.test>\nMf-Add-Header: Received-SPF: pass client-ip=192.0.2.10; identity=mailfrom\n\n' >"$tmp/carried"
check_status 'a Received-SPF carried from the mail phase is believed' continue "mf-accept --config $conf check --input stream <$tmp/carried"
check_out '... and not added again' 1 "mf-accept --config $conf check --input stream <$tmp/carried | grep -c Received-SPF"

# The next recipient of the same message: what the first run found
# stands, nothing is asked again (the resolver here never answers).
run "$(ac --client 192.0.2.12 --helo '[192.0.2.12]' --from '""')"
sed '$d' "$tmp/out" >"$tmp/next"; printf 'Mf-Rcpt-To: <bob@example.test>\n\n' >>"$tmp/next"
sed "s/^accept.resolver .*/accept.resolver 127.0.0.1:$mute_port/; s/server=127.0.0.1:$rbl_port/server=127.0.0.1:$mute_port/" "$conf" >"$tmp/next.conf"
start=$(date +%s)
check_status 'the second recipient: decided without a lookup' continue "mf-accept --config $tmp/next.conf check --input stream <$tmp/next"
[ $(( $(date +%s) - start )) -le 1 ] && ok '... at once' || not_ok '... at once' "took $(( $(date +%s) - start ))s"
check_grep '... the tag of the first run stands' "$tmp/out" '^Mf-Trace: mf-accept continue hits=rdns-generic spf=none phase=rcpt'

# Dry-run, per check and for the whole stage.
printf 'accept.resolver 127.0.0.1:%s\naccept.dnsbl bl.test server=127.0.0.1:%s\n' $nsd_port $rbl_port >"$tmp/dry.conf"
dry="mf-accept --config $tmp/dry.conf check --phase rcpt --rcpt a@example.test --client 192.0.2.7 --helo mail.spammer.test --from bob@spammer.test </dev/null"
check_status 'the DNSBL refuses a listed client' reject "$dry"
echo "accept.dnsbl bl.test server=127.0.0.1:$rbl_port dry-run" >"$tmp/dry.conf.2"
sed -i '$d' "$tmp/dry.conf"; cat "$tmp/dry.conf.2" >>"$tmp/dry.conf"
check_status '... but not when it is a dry run' continue "$dry"
check_grep '... which it records as a would-be decision' "$tmp/out" '^Mf-Trace: mf-accept continue .*would=reject:dnsbl:bl\.test'
check_grep '... and logs' "$tmp/err" 'dry-run: dnsbl:bl\.test would reject'
run "$(ac --client 192.0.2.7 --helo mail.spammer.test --from bob@spammer.test --dry-run)"
if [ "$rc" = 0 ]; then ok 'check --dry-run refuses nothing'; else not_ok 'check --dry-run refuses nothing' "exit $rc"; fi
check_grep '... and traces would-reject' "$tmp/out" '^Mf-Trace: mf-accept would-reject check=dnsbl:bl\.test'
check_nogrep '... with no verdict' "$tmp/out" '^Mf-Verdict:'

# A server that never answers: one deadline for all lookups, then as
# dns-error says; lists that time out are skipped.
cat >"$tmp/mute.conf" <<CONF
accept.resolver 127.0.0.1:$mute_port
accept.dns-timeout 1s
accept.dnsbl bl.test server=127.0.0.1:$mute_port
accept.dnsbl bl2.test server=127.0.0.1:$mute_port
accept.rhsbl rhs.test server=127.0.0.1:$mute_port
accept.check rdns-missing
accept.check spf-fail
CONF
start=$(date +%s)
check_status 'DNS timeout with dns-error tempfail: tempfail' tempfail "mf-accept --config $tmp/mute.conf check --phase rcpt --rcpt a@example.test --client 192.0.2.7 --helo mail.good.test --from bob@good.test </dev/null"
took=$(( $(date +%s) - start ))
if [ $took -le 3 ]; then ok "... after one deadline for all lookups (${took}s)"; else not_ok "... after one deadline for all lookups" "took ${took}s"; fi
check_grep '... with a DNS reply' "$tmp/out" '^Mf-Verdict: tempfail 451 4\.4\.3 '
check_grep '... the lists skipped' "$tmp/err" 'dnsbl:bl\.test: 192\.0\.2\.7 skipped: .*timeout'
echo "accept.dns-error continue" >>"$tmp/mute.conf"
check_status 'DNS timeout with dns-error continue: goes on' continue "mf-accept --config $tmp/mute.conf check --phase rcpt --rcpt a@example.test --client 192.0.2.7 --helo mail.good.test --from bob@good.test </dev/null"

# A list whose test entry is its own.
printf 'accept.resolver 127.0.0.1:%s\naccept.rhsbl rhs2.test server=127.0.0.1:%s\n' $nsd_port $rbl_port >"$tmp/rhs2.conf"
R="mf-accept --config $tmp/rhs2.conf check --phase mail --client 192.0.2.10 --helo mail.good.test --from bob@bad.example </dev/null"
check_status 'an RHSBL without the RFC 5782 "test" entry is not trusted' continue "$R"
check_grep '... unhealthy' "$tmp/err" 'rhsbl:rhs2\.test: unhealthy'
sed -i 's/$/ test=dbltest.test/' "$tmp/rhs2.conf"; sed -i '1s/ test=dbltest.test$//' "$tmp/rhs2.conf"
check_status '... with test= naming its own, it is' reject "$R"

# Authenticated clients skip the heuristics.
check_status 'an authenticated client from a listed address goes on' continue "$(ac --client 192.0.2.7 --helo localhost --from bob@spammer.test --auth-user bob)"

# Bad settings are refused with their line.
for bad in 'accept.check nonsense' 'accept.dnsbl bl.test codes=10.0.0.1' 'accept.check fcrdns action=maybe' \
	'accept.resolver example.org' 'accept.max-size ten' 'accept.dnsbl bl.test server=nowhere' 'accept.check greylist action=reject' \
	'accept.allow-net 10.0.0.1/8' 'accept.hostname "a b"'; do
	printf 'accept.dns-timeout 1s\n%s\n' "$bad" >"$tmp/bad.conf"
	check_refused "refused: $bad" "bad\.conf:2: accept\." "mf-accept --config $tmp/bad.conf check --phase rcpt --client 192.0.2.1 </dev/null"
done
done_testing
