#!/bin/sh
# mf-scan in mf-bridge's chain behind a real Postfix, with a real clamd
# and spamd: EICAR is refused over SMTP with the configured reply and not
# delivered, GTUBE is delivered tagged, clean mail is delivered with its
# fields, the infected client is blocked at its next RCPT, and nothing
# else is lost.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
. "$top/t/scan.sh"
scan_need clamd spamd
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
eicar=$data/strings/eicar.com.txt

clamd_start || { not_ok 'clamd starts'; done_testing; exit 1; }
spamd_start || { not_ok 'spamd starts'; done_testing; exit 1; }
mkdir -p "$tmp/state" "$tmp/lists"; chmod 755 "$tmp"; chown games "$tmp/state" "$tmp/lists"  # stages run as games (t/postfix.sh)
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
bridge.decision-log $tmp/decisions.log
bridge.stage lists rcpt mf-lists -c $tmp/mf.conf check
bridge.stage scan data mf-scan -c $tmp/mf.conf check
scan.engine av clamd addr=unix:$clamd_sock reply="554 5.7.1 Virus found" block=client:virus-hosts:1h
scan.engine sa spamd addr=tcp:127.0.0.1:$spamd_port user=rcpt reject=2000 subject="[SPAM] "
CONF
touch "$tmp/decisions.log"; chown nobody "$tmp/decisions.log"
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
ok 'Postfix, mf-bridge, clamd and spamd run'

sent=0
send() {
	name=$1; shift
	swaks --server 127.0.0.1:$pf_port --helo client.example.org --from sender@example.org "$@" >"$tmp/$name" 2>&1
	sent=$((sent + 1))
}

# The clean message says it was scanned already, and found bad: the
# scanner's fields are its own, the message's copies are taken away.
send clean --to alice@example.test --header "Subject: clean" --header "X-Virus-Status: Infected" --header "X-Spam-Flag: YES" --body "Just a clean message."
pf_wait_delivered 1
m=$(pf_mail 'Subject: clean')
if [ -n "$m" ]; then ok 'clean mail is delivered'; else not_ok 'clean mail is delivered' "$(tail -5 "$tmp/clean")" "$(tail -5 "$tmp/bridge.log")"; fi
check_grep '... with X-Virus-Status: Clean' "${m:-/dev/null}" '^X-Virus-Status: Clean'
check_out "... and no other X-Virus-Status (the message's own is deleted)" 1 "grep -c '^X-Virus-Status:' ${m:-/dev/null}"
check_out "... one X-Spam-Flag, spamd's NO" "X-Spam-Flag: NO" "grep '^X-Spam-Flag:' ${m:-/dev/null}"
check_grep '... and the mf result field' "${m:-/dev/null}" '^X-Mf-Scan: continue; av=clean [0-9]+ms; sa=ham user=alice@example\.test '

send virus --to alice@example.test --header "Subject: virus attached" --attach-type application/octet-stream --attach-name eicar.com --attach "@$eicar" --local-interface 127.0.0.3
check_grep 'EICAR over SMTP is refused with the configured reply' "$tmp/virus" '<\*\* 554 5\.7\.1 Virus found'
send virus2 --to alice@example.test --header "Subject: virus body" --body "@$eicar" --local-interface 127.0.0.4
check_grep '... as a plain body too' "$tmp/virus2" '<\*\* 554 5\.7\.1 Virus found'

send spam --to bob@example.test --data "$msg/spam.eml"
pf_wait_delivered 2
m=$(pf_mail 'GTUBE')
if [ -n "$m" ]; then ok 'GTUBE below the reject score is delivered'; else not_ok 'GTUBE is delivered' "$(tail -5 "$tmp/spam")"; fi
check_grep '... tagged X-Spam-Flag: YES' "${m:-/dev/null}" '^X-Spam-Flag: YES'
check_grep '... with the Subject prefix' "${m:-/dev/null}" '^Subject: \[SPAM\] Test spam mail \(GTUBE\)'

# The infected client goes on the dynamic list (each virus above came
# from a client of its own): its next RCPT fails.
send v3 --to alice@example.test --header "Subject: virus from .2" --body "@$eicar" --local-interface 127.0.0.2
check_grep 'EICAR from 127.0.0.2 is refused' "$tmp/v3" '<\*\* 554 5\.7\.1 Virus found'
send after --to alice@example.test --header "Subject: after the virus" --local-interface 127.0.0.2
check_grep '... and its next message is refused at RCPT by mf-lists' "$tmp/after" 'RCPT TO:<alice@example\.test>'
check_grep '... with the dynamic list reply' "$tmp/after" '<\*\* 550 5\.7\.1 Access denied'
check_status 'mf-lists show has it' continue "mf-lists -c $tmp/mf.conf show virus-hosts"
check_grep '... saying who and why' "$tmp/out" '^virus-hosts	127\.0\.0\.2	expires .*	added .* by mf-scan	mf-scan: av infected$'

# The decision log names the stage and its reply.
check_grep 'decision log: scan rejected the virus' "$tmp/decisions.log" '"name":"scan","phase":"data","action":"reject","exit":100,.*"reply":"554 5.7.1 Virus found"'

mf-stat "$tmp/decisions.log" >"$tmp/stat.txt" 2>&1
check_grep 'mf-stat summarizes the scan stage' "$tmp/stat.txt" 'scan.*reject'

# clamd stops: mf-scan exits 75, the chain's on-error tempfails, and
# the client keeps the message to try again.
clamd_stop
send down --to alice@example.test --header "Subject: while clamd is down" --body "clean, but unscanned"
check_grep 'clamd down: the client is told to try again later' "$tmp/down" '<\*\* 451 4\.7\.1 Try again later'
check_grep '... the bridge logs why' "$tmp/bridge.log" 'stage scan at data failed: exit 75; on-error gives tempfail; it said: mf-scan: error: engine av: clamd unavailable'

# Nothing lost: two delivered, the rest refused to the client (who keeps them).
sleep 0.5
check_out 'two delivered' 2 "ls $tmp/pf/mail/inbox/new | wc -l"
refused=$(grep -l '^<\*\* [45][0-9][0-9]' "$tmp/virus" "$tmp/virus2" "$tmp/v3" "$tmp/after" "$tmp/down" | wc -l)
check_out "every message accounted for ($sent sent, 2 delivered, $refused refused)" 0 "echo \$(( $sent - 2 - $refused ))"
check_out 'nothing in the queue' "" "pf_queue | grep '^[0-9A-F]'"
check_nogrep 'no virus in the Maildir' "$(ls "$tmp"/pf/mail/inbox/new/* | head -1)" 'X5O!P%@AP'
done_testing
