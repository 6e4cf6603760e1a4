#!/bin/sh
# mf-scan with a real spamd (packaged rules, network tests and Bayes
# off): GTUBE is tagged, quarantined or rejected by threshold, with the
# X-Spam-* fields; one scan per distinct recipient user; size cap;
# per-user concurrency slots; the cache; spamd down.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
. "$top/t/scan.sh"
scan_need spamd spamc
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
spam=$msg/spam.eml ham=$msg/nonspam.eml

spamd_children=3
spamd_start || { not_ok 'spamd starts'; done_testing; exit 1; }
ok 'spamd starts, offline'

conf() {
	{ echo "state-dir $tmp/state"; echo "scan.engine sa spamd addr=tcp:127.0.0.1:$spamd_port $1"; echo "scan.cache-ttl ${cache:-0}"; } >"$tmp/mf.conf"
}
S="mf-scan -c $tmp/mf.conf check"
lf() { tr -d '\r' <"$tmp/out" >"$tmp/lf"; }

conf ""
check_status 'GTUBE, default thresholds: tagged, passes' continue "$S --output message <$spam"
check_grep '... X-Spam-Flag: YES' "$tmp/out" '^X-Spam-Flag: YES$'
check_grep '... X-Spam-Score' "$tmp/out" '^X-Spam-Score: 1[0-9]{3}\.[0-9]$'
check_grep '... X-Spam-Status with the tests' "$tmp/out" '^X-Spam-Status: Yes, score=1[0-9]{3}\.[0-9] required=5\.0 tests=.*GTUBE'
check_grep '... X-Mf-Scan says tag' "$tmp/out" '^X-Mf-Scan: tag by sa; sa=spam 1[0-9]{3}\.[0-9]/5\.0 [0-9]+ms$'
check_grep '... the Subject is untouched' "$tmp/out" '^Subject: Test spam mail \(GTUBE\)$'
check_status 'the sample non-spam passes' continue "$S --output message <$ham"
check_grep '... X-Spam-Flag: NO' "$tmp/out" '^X-Spam-Flag: NO$'
check_grep '... X-Spam-Status: No' "$tmp/out" '^X-Spam-Status: No, score=-?[0-9.]+ required=5\.0'
check_grep '... X-Mf-Scan says continue' "$tmp/out" '^X-Mf-Scan: continue; sa=ham '
# The message's own X-Spam-* fields are taken away, as spamd does: a
# sender cannot say NO.
{ printf 'X-Spam-Flag: NO\nX-Spam-Status: No, score=-10.0\n\ttests=FORGED\nX-Spam-Anything: kept? no\n'; cat "$spam"; } >"$tmp/forged.eml"
check_status 'GTUBE that brings X-Spam-Flag: NO of its own: tagged' continue "$S --output message <$tmp/forged.eml"
cp "$tmp/out" "$tmp/forged.out"
check_out '... one X-Spam-Flag, YES' 'X-Spam-Flag: YES' "grep '^X-Spam-Flag:' $tmp/forged.out"
check_out '... one X-Spam-Status, spamd'"'"'s' 1 "grep -c '^X-Spam-Status:' $tmp/forged.out"
check_nogrep '... the forged fields gone, folded line and all' "$tmp/forged.out" 'FORGED|X-Spam-Anything'
# The same check spamc -c makes.
spamc -d 127.0.0.1 -p $spamd_port -c <$spam >"$tmp/spamc"
score=$(sed 's|/.*||' "$tmp/spamc")
run "$S --output message <$spam"; lf
check_grep "GTUBE's score is the one spamc -c prints ($score)" "$tmp/lf" "^X-Spam-Score: $score\$"

conf 'subject="[SPAM] "'
check_status 'subject prefix: passes' continue "$S --output message <$spam"
check_grep '... with [SPAM] before the Subject' "$tmp/out" '^Subject: \[SPAM\] Test spam mail \(GTUBE\)$'
check_status '... the ham is not prefixed' continue "$S --output message <$ham"
check_nogrep '... (no prefix)' "$tmp/out" '^Subject: \[SPAM\]'
check_status 'a stream: the prefix is on the message too' continue "$S --output stream <$spam"
check_grep '... ' "$tmp/out" '^Subject: \[SPAM\] Test spam mail \(GTUBE\)$'
check_grep '... with the X-Spam fields on it' "$tmp/out" '^X-Spam-Flag: YES$'

conf 'tag=2000'
check_status 'tag=2000: GTUBE is not tagged' continue "$S --output message <$spam"
check_grep '... X-Spam-Flag: NO' "$tmp/out" '^X-Spam-Flag: NO$'
conf 'quarantine=500 reject=2000'
check_status 'quarantine=500: GTUBE held' accept "$S --output stream <$spam"
check_grep '... quarantine' "$tmp/out" '^Mf-Verdict: quarantine held by content scan$'
conf 'reject=15'
check_status 'reject=15: GTUBE rejected' reject "$S --output stream <$spam"
check_grep '... with the generic reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Message content rejected$'
check_status '... the ham passes' continue "$S <$ham"
conf 'reject=15 reply="550 5.7.1 Looks like spam to us"'
check_status 'a configured reply' reject "$S --output stream <$spam"
check_grep '... is used' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Looks like spam to us$'

# One scan per distinct user, as spamc -u.
conf 'user=rcpt'
: >"$sd_dir/log.mark"; n0=$(grep -c 'spamd: result:' "$sd_dir/log")
check_status 'two recipients, user=rcpt' continue "$S --output message --rcpt alice@example.com --rcpt Bob@Example.com --rcpt ALICE@example.com <$spam"
sleep 0.5
n1=$(grep -c 'spamd: result:' "$sd_dir/log")
if [ $((n1 - n0)) = 2 ]; then ok '... two scans (alice twice is one user)'; else not_ok '... two scans' "$((n1 - n0)) scans"; fi
check_grep "... spamd scanned for alice" "$sd_dir/log" 'result: Y .*user=alice@example\.com,'
check_grep "... and for bob" "$sd_dir/log" 'result: Y .*user=bob@example\.com,'
check_grep '... X-Mf-Scan names both' "$tmp/out" '^X-Mf-Scan: tag by sa; sa=spam user=alice@example\.com [0-9.]+/5\.0 [0-9]+ms; sa=spam user=bob@example\.com '
cp "$tmp/out" "$tmp/two"
check_out '... and one set of X-Spam fields' 1 "grep -c '^X-Spam-Flag:' $tmp/two"
conf 'user=local'
check_status 'user=local: the local part' continue "$S --rcpt carol@example.com <$spam"
sleep 0.3
check_grep '... is the spamd user' "$sd_dir/log" 'result: Y .*user=carol,'
conf 'user=mailfilter'
check_status 'a fixed user' continue "$S --rcpt dave@example.com <$spam"
sleep 0.3
check_grep '... is the spamd user' "$sd_dir/log" 'result: Y .*user=mailfilter,'

# Size: spamc's 500 KB by default.
awk 'BEGIN { printf "Subject: big\n\n"; for (i = 0; i < 15000; i++) print "a clean line of text, repeated to be big" }' >"$tmp/big.eml"
{ cat "$spam"; cat "$tmp/big.eml"; } >"$tmp/bigspam.eml"
conf 'reject=15'
check_status 'over 500 KB: not scanned, passes' continue "$S --output message <$tmp/bigspam.eml"
check_grep '... marked skipped for size' "$tmp/out" '^X-Mf-Scan: continue; sa=skipped [0-9]+ms; skipped=sa:size$'
check_nogrep '... no X-Spam fields' "$tmp/out" '^X-Spam-'
conf 'reject=15 max-size=1M'
check_status 'max-size=1M: scanned, rejected' reject "$S <$tmp/bigspam.eml"

# The cache, per user.
cache=1h; conf 'user=rcpt'; cache=0
check_status 'cache: first scan' continue "$S --output stream --rcpt erin@example.com <$spam"
check_grep '... by spamd' "$tmp/out" '^Mf-Trace: mf-scan continue by=sa sa=spam [0-9.]+ms'
check_status 'cache: again for erin' continue "$S --output stream --rcpt erin@example.com <$spam"
check_grep '... from the cache' "$tmp/out" '^Mf-Trace: mf-scan continue by=sa sa=spam:cached '
check_grep '... with its fields' "$tmp/out" '^X-Spam-Flag: YES$'
check_status 'cache: another user is scanned' continue "$S --output stream --rcpt frank@example.com <$spam"
check_grep '... by spamd' "$tmp/out" '^Mf-Trace: mf-scan continue by=sa sa=spam [0-9.]+ms'

# HEADERS: spamd's own fields.
conf 'command=headers'
check_status 'command=headers' continue "$S --output message <$spam"
check_grep "... spamd's X-Spam-Status, on one line" "$tmp/out" '^X-Spam-Status: Yes, score=1[0-9.]+ required=5\.0 tests=.*GTUBE.* autolearn=disabled'
check_grep "... X-Spam-Flag" "$tmp/out" '^X-Spam-Flag: YES$'
conf 'command=report'
check_status 'command=report' continue "$S --output message <$spam"
check_grep '... the report is logged' "$tmp/err" 'spamd report for "": .*GTUBE'

# At most N scans at once per user: with one slot, messages for the
# same user at the same time wait, and past slot-wait tempfail.
conf 'user=rcpt concurrency=1 slot-wait=200ms reject=15 max-size=2M'
awk 'BEGIN { printf "Subject: slow\n\n"; for (i = 0; i < 3000; i++) printf "line %d with words to read buy cheap pills now http://example.com/%d\n", i, i }' >"$tmp/slow.eml"
pids=
for i in 1 2 3 4; do
	( $S --rcpt grace@example.com <"$tmp/slow.eml" >/dev/null 2>"$tmp/conc.$i"; echo $? >"$tmp/conc.$i.rc" ) &
	pids="$pids $!"
done
( $S --rcpt heidi@example.com <"$tmp/slow.eml" >/dev/null 2>"$tmp/conc.h"; echo $? >"$tmp/conc.h.rc" ) &
wait $pids $!
codes=$(cat "$tmp"/conc.[1-4].rc | sort | tr '\n' ' ')
case $codes in
"0 111 111 111 " | "0 0 111 111 " | "0 0 0 111 ") ok "one user, one slot: the others tempfail ($codes)" ;;
*) not_ok "one user, one slot: the others tempfail" "exit codes $codes" "$(cat "$tmp"/conc.*)" ;;
esac
check_grep '... saying they were busy' "$(grep -l busy "$tmp"/conc.[1-4] | head -1 || echo /dev/null)" 'sa user grace@example\.com: busy 1 scans already running'
check_out '... another user is not held up' 0 "cat $tmp/conc.h.rc"
check_status '... and the slot is free again after' continue "$S --rcpt grace@example.com <$tmp/slow.eml"

# spamd down.
spamd_stop
conf 'connect-timeout=1s'
check_status 'spamd down: exit 75' error "$S --output stream <$spam"
check_grep '... saying why' "$tmp/err" 'engine sa: spamd unavailable'
conf 'connect-timeout=1s on-error=continue'
check_status 'on-error=continue: passes' continue "$S --output message <$spam"
check_grep '... marked' "$tmp/out" '^X-Mf-Scan: continue; sa=error [0-9]+ms$'

done_testing
