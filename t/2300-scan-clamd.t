#!/bin/sh
# mf-scan with a real clamd (offline, a local database that detects
# EICAR): EICAR as a plain body, a base64 attachment and inside a zip is
# rejected or quarantined; clean mail passes with its fields; size caps
# are marked skipped; clamd killed during a scan and clamd stopped give
# exit 75 or on-error; feedback to a dynamic list; the result cache.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
. "$top/t/scan.sh"
scan_need clamd clamdscan
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
eicar=$data/strings/eicar.com.txt

clamd_stream_max=1M
clamd_start || { not_ok 'clamd starts'; done_testing; exit 1; }
ok 'clamd starts with the local database'

# Messages.
{ printf 'From: a@example.org\nTo: b@example.com\nSubject: plain eicar\n\n'; cat "$eicar"; printf '\n'; } >"$tmp/plain.eml"
attach() { # NAME TYPE FILE: a message with FILE attached, base64
	printf 'From: a@example.org\nTo: b@example.com\nSubject: attached %s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n' "$1"
	printf -- '--b1\nContent-Type: text/plain\n\nSee the attachment.\n--b1\nContent-Type: %s; name="%s"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="%s"\n\n' "$2" "$1" "$1"
	base64 <"$3"
	printf -- '--b1--\n'
}
attach eicar.com application/octet-stream "$eicar" >"$tmp/b64.eml"
perl -MIO::Compress::Zip=zip -e 'zip($ARGV[0] => $ARGV[1], Name => "eicar.com") or die' "$eicar" "$tmp/eicar.zip"
attach report.zip application/zip "$tmp/eicar.zip" >"$tmp/zip.eml"
# Zip made by someone else: docker-mailserver's test messages.
dms=$data/docker-mailserver/test/files/emails

conf() { # extra engine options, then scan.* lines on stdin
	{ echo "state-dir $tmp/state"; echo "scan.engine av clamd addr=unix:$clamd_sock $1"; echo "scan.cache-ttl ${cache:-0}"; cat; } >"$tmp/mf.conf"
}
S="mf-scan -c $tmp/mf.conf check"
conf "" </dev/null

for m in plain b64 zip; do
	check_status "EICAR ($m) is rejected" reject "$S --output stream <$tmp/$m.eml"
	check_grep '... with the generic reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Message content rejected$'
	check_nogrep '... which names no signature and no engine' "$tmp/out" '^Mf-Verdict: .*([Ee]icar|clam|av)'
	check_grep '... the log names the signature' "$tmp/err" 'reject: av: infected Eicar-Test-(Signature|NDB)\.UNOFFICIAL'
done
check_grep 'the trace says which engine decided' "$tmp/out" '^Mf-Trace: mf-scan reject by=av av=infected [0-9.]+ms$'
for f in amavis rspamd; do
	check_status "docker-mailserver's $f/virus.txt is rejected" reject "$S <$dms/$f/virus.txt"
done

conf 'on-virus=quarantine reply="554 5.7.1 Virus found"' </dev/null
check_status 'on-virus=quarantine: exit 99' accept "$S --output stream <$tmp/zip.eml"
check_grep '... quarantine in the verdict' "$tmp/out" '^Mf-Verdict: quarantine '
conf 'reply="554 5.7.1 Virus found"' </dev/null
check_status 'a configured reply' reject "$S --output stream <$tmp/b64.eml"
check_grep '... is the one given' "$tmp/out" '^Mf-Verdict: reject 554 5\.7\.1 Virus found$'
conf 'on-virus=tag header="X-Virus: yes"' </dev/null
check_status 'on-virus=tag: continue' continue "$S --output message <$tmp/plain.eml"
check_grep '... with the header asked for' "$tmp/out" '^X-Virus: yes$'
check_grep '... and X-Virus-Status' "$tmp/out" '^X-Virus-Status: Infected$'

# Clean mail, from the shared corpora, passes with its fields and is
# otherwise unchanged.
conf "" </dev/null
n=0 bad=
for f in "$data"/spamassassin/sample-nonspam.txt "$data"/enmime/testdata/mail/*.raw "$data"/cpython-test_email/msg_0*.txt "$data"/milter-manager-test-mails/normal/*/*.eml; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	run "$S --output message <'$f'"
	tr -d '\r' <"$tmp/out" >"$tmp/lf"
	if [ "$rc" != 0 ] || ! grep -q '^X-Virus-Status: Clean$' "$tmp/lf" || ! grep -q '^X-Mf-Scan: continue; av=clean [0-9]*ms' "$tmp/lf"; then
		bad="$bad $f(exit $rc)"
		continue
	fi
	sed '/^X-Virus-Scanned: \|^X-Virus-Status: \|^X-Mf-Scan/d' "$tmp/out" | cmp -s - "$f" || bad="$bad $f(changed)"
done
if [ -z "$bad" ] && [ $n -gt 30 ]; then ok "$n clean messages pass, with X-Virus-Status and X-Mf-Scan, otherwise unchanged"
else not_ok "$n clean messages pass" "$bad"; fi
check_status 'the sample non-spam passes' continue "$S --output message <$data/spamassassin/sample-nonspam.txt"
check_grep '... X-Virus-Scanned' "$tmp/out" '^X-Virus-Scanned: ClamAV using mf-scan$'

# Size caps.
awk 'BEGIN { printf "Subject: big\n\n"; for (i = 0; i < 40000; i++) print "a clean line of text, repeated to be big" }' >"$tmp/big.eml"
conf "max-size=100K" </dev/null
check_status 'a message over max-size passes' continue "$S --output message <$tmp/big.eml"
check_grep '... marked skipped for size in X-Mf-Scan' "$tmp/out" '^X-Mf-Scan: continue; av=skipped [0-9]+ms; skipped=av:size$'
check_nogrep '... and not said to be scanned' "$tmp/out" '^X-Virus-'
{ cat "$tmp/plain.eml"; cat "$tmp/big.eml"; } >"$tmp/bigvirus.eml"
check_status '... even with a virus in it: skipped, not scanned' continue "$S --output stream <$tmp/bigvirus.eml"
check_grep '... the trace says so' "$tmp/out" '^Mf-Trace: mf-scan continue av=skipped:size '
conf "max-size=10M" </dev/null
check_status "over clamd's own StreamMaxLength (1M): passes" continue "$S --output message <$tmp/big.eml"
check_grep '... marked skipped for size' "$tmp/out" '^X-Mf-Scan: continue; av=skipped [0-9]+ms; skipped=av:size$'

# Several addresses: the first that answers scans.
conf "addr=unix:$tmp/nonexistent.sock addr=tcp:127.0.0.1:$clamd_port connect-timeout=1s" </dev/null
sed -i "s|addr=unix:$clamd_sock ||" "$tmp/mf.conf"
check_status 'a dead socket first, then TCP: scanned' reject "$S <$tmp/plain.eml"

# The cache: the same body again is not sent to clamd.
cache=1h; conf "" </dev/null; cache=0
{ printf 'Received: from one\n'; cat "$tmp/b64.eml"; } >"$tmp/c1.eml"
{ printf 'Received: from two\n'; cat "$tmp/b64.eml"; } >"$tmp/c2.eml"
before=$(grep -c 'FOUND' "$cd_dir/clamd.log")
check_status 'cache: first message scanned' reject "$S --output stream <$tmp/c1.eml"
check_grep '... by clamd' "$tmp/out" 'av=infected [0-9.]+ms$'
check_status 'cache: the same body with another header' reject "$S --output stream <$tmp/c2.eml"
check_grep '... comes from the cache' "$tmp/out" '^Mf-Trace: mf-scan reject by=av av=infected:cached '
sleep 0.3
after=$(grep -c 'FOUND' "$cd_dir/clamd.log")
if [ $((after - before)) = 1 ]; then ok '... clamd saw it once'; else not_ok '... clamd saw it once' "$((after - before)) scans in the clamd log"; fi

# Feedback: the client goes on a dynamic list, and mf-lists refuses it.
conf "block=client:virus-hosts:1h" </dev/null
mkdir -p "$tmp/lists"
check_status 'before: mf-lists lets 192.0.2.66 in' continue "mf-lists --dir $tmp/lists --state-dir $tmp/state check --output none --client 192.0.2.66 </dev/null"
check_status 'a virus with block=client:virus-hosts:1h' reject "$S --client 192.0.2.66 <$tmp/plain.eml"
check_grep '... logged' "$tmp/err" '192\.0\.2\.66 added to dynamic list virus-hosts for 1h0m0s'
check_status '... and the next mf-lists check from that client fails' reject "mf-lists --dir $tmp/lists --state-dir $tmp/state check --output none --client 192.0.2.66 </dev/null"
check_status 'dry-run: a virus is not refused' continue "$S --dry-run --output stream --client 192.0.2.67 <$tmp/plain.eml"
check_grep '... the trace says what would have been' "$tmp/out" '^Mf-Trace: mf-scan would-reject '
check_status '... and no client was blocked' continue "mf-lists --dir $tmp/lists --state-dir $tmp/state check --output none --client 192.0.2.67 </dev/null"

# Malformed MIME: a verdict or exit 75, never a panic; a part that
# could not be decoded is named.
conf "" </dev/null
n=0 bad=
for f in "$data"/enmime/testdata/low-quality/* "$data"/james-mime4j/core/src/test/resources/*/* "$data"/cpython-test_email/*; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	run "$S --output message <'$f'"
	case $rc in 0 | 99 | 100 | 111 | 75) ;; *) bad="$bad $f(exit $rc)" ;; esac
	grep -q 'internal error\|panic' "$tmp/err" && bad="$bad $f(panic)"
done
if [ -z "$bad" ] && [ $n -gt 100 ]; then ok "$n malformed and odd messages: a verdict or 75, no panic"; else not_ok "$n malformed messages" "$bad"; fi
check_status 'an unknown charset passes' continue "$S --output message <$data/enmime/testdata/low-quality/unk-charset-part.raw"
check_grep '... with the part named' "$tmp/out" '^X-Mf-Scan-Undecoded: 1: .*fakescii'
check_grep '... in the result field too' "$tmp/out" '^X-Mf-Scan: continue; av=clean [0-9]+ms; undecoded=1,2$'

# clamd killed in the middle of a scan: clamd is stopped (SIGSTOP) so
# that mf-scan, connected, is held inside INSTREAM with more of the
# message to send than the socket takes, then killed. WAY is the engine's
# on-error, WANT the exit status.
awk 'BEGIN { printf "From: a@example.org\nSubject: big and clean\n\n"; for (i = 0; i < 18000; i++) print "a clean line of text, repeated to be fifty bytes." }' >"$tmp/900k.eml"
midscan() { # WAY WANT
	conf "${1:+on-error=$1}" </dev/null
	kill -STOP $clamd_pid
	rm -f "$tmp/mid.rc"
	(
		$S --output stream <"$tmp/900k.eml" >"$tmp/mid.out" 2>"$tmp/mid.err"
		echo $? >"$tmp/mid.rc"
	) &
	sub=$!
	sleep 1
	if [ ! -e "$tmp/mid.rc" ] && ss -xp 2>/dev/null | grep -q "mf-scan"; then ok "clamd stopped: mf-scan waits inside INSTREAM${1:+ (on-error=$1)}"
	else not_ok "clamd stopped: mf-scan waits inside INSTREAM" "$(cat "$tmp/mid.rc" "$tmp/mid.err" 2>/dev/null)"; fi
	kill -KILL $clamd_pid; wait $clamd_pid 2>/dev/null; clamd_pid=
	wait $sub
	check_out "... clamd killed then: exit $2" "$2" "cat $tmp/mid.rc"
}
midscan "" 75
check_grep '... saying the engine failed' "$tmp/mid.err" 'engine av: '
check_status '... and nothing on stdout' 0 "test ! -s $tmp/mid.out"
clamd_start || not_ok 'clamd starts again'
midscan tempfail 111
check_grep '... the configured fallback, with its generic reply' "$tmp/mid.out" '^Mf-Verdict: tempfail 451 4\.7\.1 '

# clamd stopped mid-run.
clamd_start || not_ok 'clamd starts again'
clamd_stop
conf "connect-timeout=1s" </dev/null
check_status 'clamd down: exit 75' error "$S --output stream <$tmp/plain.eml"
check_grep '... saying why' "$tmp/err" 'engine av: clamd unavailable'
check_status '... and nothing on stdout' 0 "test ! -s $tmp/out"
conf "connect-timeout=1s on-error=tempfail" </dev/null
check_status 'on-error=tempfail: 111' tempfail "$S --output stream <$tmp/plain.eml"
check_grep '... with the generic reply' "$tmp/out" '^Mf-Verdict: tempfail 451 4\.7\.1 '
conf "connect-timeout=1s on-error=continue" </dev/null
check_status 'on-error=continue: passes' continue "$S --output message <$tmp/plain.eml"
check_grep '... marked as not scanned' "$tmp/out" '^X-Mf-Scan: continue; av=error [0-9]+ms$'
check_nogrep '... and not said to be clean' "$tmp/out" '^X-Virus-Status'

done_testing
