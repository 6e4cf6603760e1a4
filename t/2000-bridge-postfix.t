#!/bin/sh
# mf-bridge as Postfix's milter: mail sent over SMTP to a private Postfix,
# the outcome read from the Maildir, the queue, the SMTP replies and the
# decision log.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix

mkdir -p "$tmp/lists" "$tmp/state" "$tmp/mark"; chmod 755 "$tmp"; chmod 777 "$tmp/mark"
cat >"$tmp/lists/10-clients.list" <<'L'
match: client-addr
action: block
reply: 550 5.7.1 Your address is blocked here
127.0.0.2
L
cat >"$tmp/lists/30-connect.list" <<'L'
match: client-addr
action: block
127.0.0.3
L
cat >"$tmp/lists/20-rcpts.list" <<'L'
match: rcpt
action: block
reply: 550 5.1.1 No such user here
blocked@example.test
L
# One chain for every case below: each stage acts only on its own mark
# in the Subject or envelope, and leaves other mail alone.
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
bridge.decision-log $tmp/decisions.log
bridge.stage lists rcpt mf-lists check
bridge.stage early connect mf-lists --list $tmp/lists/30-connect.list check
bridge.stage seen data input=message output=headers -- sh -c 'echo "X-Seen: client=\$TCPREMOTEIP helo=\$HELO"'
bridge.stage reject data input=message output=exit 0=reject 1=continue reply="550 5.7.1 Rejected by test" -- grep -q "^Subject: REJECTME"
bridge.stage later data input=message output=exit 0=tempfail 1=continue reply="451 4.7.1 Later please" -- grep -q "^Subject: TEMPFAILME"
bridge.stage hold data input=message output=exit 0=quarantine 1=continue -- grep -q "^Subject: HOLDME"
bridge.stage drop data input=message output=exit 0=discard 1=continue -- grep -q "^Subject: DROPME"
bridge.stage top data input=message output=message -- sed "1i X-Top: put on top by a stage"
bridge.stage redact data input=message output=message -- sed "s/secret/[redacted]/g"
bridge.stage retitle data input=message output=message -- sed "s/^Subject: RETITLE\$/Subject: retitled by mf/; /^X-Drop-Me:/d"
bridge.stage envelope data -- sed "1,/^\$/ { s/^Mf-Rcpt-To: <drop@example.test>\$/Mf-Rcpt-To: <added@example.test>/; s/^Mf-Mail-From: <changeme@example.org>\$/Mf-Mail-From: <changed@example.org>/; }"
bridge.stage slow data timeout=1s input=message output=exit -- sh -c 'grep -q "^Subject: SLOWME" && sleep 30; exit 0'
bridge.stage pause data timeout=10s input=message output=exit -- sh -c 'grep -q "^Subject: PAUSEME" && touch $tmp/mark/paused && sleep 3; exit 0'
bridge.stage exit1 data input=message output=exit on-error=accept -- sh -c 'if grep -q "^Subject: EXIT1ME"; then exit 1; fi'
bridge.stage killed data input=message output=exit on-error=reject -- sh -c 'if grep -q "^Subject: KILLME"; then kill -9 \$\$; fi'
bridge.stage garbage data -- sh -c 't=\$(mktemp); cat >\$t; if grep -q "^Subject: GARBAGEME" \$t; then echo garbage; else cat \$t; fi; rm -f \$t'
CONF
chown -R games "$tmp/state" "$tmp/lists"
touch "$tmp/decisions.log"; chown nobody "$tmp/decisions.log"

if bridge_start "$tmp/mf.conf"; then ok 'mf-bridge listens'; else not_ok 'mf-bridge listens'; done_testing; exit 1; fi
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }

sent=0
# send NAME ARGS...: swaks to the private Postfix; its transcript in $tmp/NAME.
send() {
	name=$1; shift
	swaks --server 127.0.0.1:$pf_port --helo client.example.org --from sender@example.org "$@" >"$tmp/$name" 2>&1
	sent=$((sent + 1))
}

send plain --to alice@example.test --header "Subject: plain" --body "hello"
pf_wait_delivered 1
m=$(pf_mail 'Subject: plain')
if [ -n "$m" ]; then ok 'accepted mail is delivered'; else not_ok 'accepted mail is delivered' "$(cat "$tmp/plain")" "$(tail -5 "$tmp/bridge.log")"; fi
check_grep 'a stage adds a header; it sees client address and HELO' "${m:-/dev/null}" '^X-Seen: client=127\.0\.0\.1 helo=client\.example\.org$'

send blocked --to alice@example.test --header "Subject: blocked client" --local-interface 127.0.0.2
check_grep 'a blocked client is refused at RCPT with the stage text' "$tmp/blocked" '<\*\* 550 5\.7\.1 Your address is blocked here'
send early --to alice@example.test --header "Subject: blocked at connect" --local-interface 127.0.0.3
check_grep 'a client refused at connect gets Postfix'"'"'s own 554 greeting' "$tmp/early" '<\*\* 554 .*not accepting connections'

send rcpts --to alice@example.test,blocked@example.test,bob@example.test --header "Subject: three rcpts" --body "three"
check_grep 'a blocked recipient is refused at RCPT with its own text' "$tmp/rcpts" 'RCPT TO:<blocked@example.test>' 
check_grep '... 550 5.1.1 from the list' "$tmp/rcpts" '<\*\* 550 5\.1\.1 No such user here'
pf_wait_delivered 3
m=$(pf_mail 'Subject: three rcpts')
check_grep '... the others are delivered' "${m:-/dev/null}" '^Delivered-To: (alice|bob)@example\.test'
check_out '... both of them, once each' 2 "grep -l 'Subject: three rcpts' $tmp/pf/mail/inbox/new/* | wc -l"

send reject --to alice@example.test --header "Subject: REJECTME"
check_grep 'a data-stage reject gives 5xx with its reply' "$tmp/reject" '<\*\* 550 5\.7\.1 Rejected by test'
send later --to alice@example.test --header "Subject: TEMPFAILME"
check_grep 'a data-stage tempfail gives 4xx with its reply' "$tmp/later" '<\*\* 451 4\.7\.1 Later please'

send hold --to alice@example.test --header "Subject: HOLDME"
check_grep 'quarantine is accepted by the MTA' "$tmp/hold" '<- +250 2\.0\.0 Ok: queued'
sleep 0.5
pf_queue >"$tmp/queue"
check_grep '... and put on hold' "$tmp/queue" '^[0-9A-F]+!'

send drop --to alice@example.test --header "Subject: DROPME"
check_grep 'discard: the client is told the message was taken' "$tmp/drop" '<- +250 2\.0\.0 Ok: queued'
# Postfix logs through postlogd, a moment later.
i=0; until grep -q 'milter-discard: END-OF-MESSAGE' "$tmp/pf/maillog" || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
check_grep '... Postfix discards it' "$tmp/pf/maillog" 'milter-discard: END-OF-MESSAGE'

send redact --to alice@example.test --header "Subject: redact" --body "the secret word"
send retitle --to alice@example.test --header "Subject: RETITLE" --add-header "X-Drop-Me: please" --body "title"
pf_wait_delivered 5
m=$(pf_mail 'the .redacted. word')
if [ -n "$m" ]; then ok 'a replaced body is delivered'; else not_ok 'a replaced body is delivered' "$(tail -5 "$tmp/bridge.log")"; fi
m=$(pf_mail 'Subject: retitled by mf')
if [ -n "$m" ]; then ok 'a changed header is delivered'; else not_ok 'a changed header is delivered' "$(tail -5 "$tmp/bridge.log")"; fi
check_nogrep '... a deleted header is gone' "${m:-/dev/null}" '^X-Drop-Me'
check_nogrep '... the old value is gone' "${m:-/dev/null}" '^Subject: RETITLE'
check_out 'a field a stage put on top lands just below Postfix'"'"'s own Received' "Received: from client.example.org (localhost [127.0.0.1])
X-Top: put on top by a stage" "sed -n '/^Received:/,/^X-Top:/p' $m | grep -v '^[[:space:]]'"

# A body larger than one milter packet is replaced whole.
awk 'BEGIN { for (i = 0; i < 6000; i++) printf "line %05d of a long body with a secret in it\n", i }' >"$tmp/long.txt"
send long --to alice@example.test --header "Subject: long body" --body "$tmp/long.txt"
pf_wait_delivered 6
m=$(pf_mail 'Subject: long body')
check_out 'a 280 KB body is replaced whole, in order' "$(sed 's/secret/[redacted]/' "$tmp/long.txt" | md5sum)" "sed '1,/^\r*\$/d' ${m:-/dev/null} | tr -d '\r' | head -6000 | md5sum"

send envelope --from changeme@example.org --to drop@example.test,carol@example.test --header "Subject: envelope"
pf_wait_delivered 8
check_out 'a removed recipient gets nothing, an added one the message' "added@example.test carol@example.test" \
	"grep -h '^Delivered-To:' \$(grep -l 'Subject: envelope' $tmp/pf/mail/inbox/new/*) | sed 's/Delivered-To: //' | sort | tr '\n' ' ' | sed 's/ \$//'"
check_out 'the changed sender is the Return-Path' "<changed@example.org>" \
	"grep -h '^Return-Path:' \$(grep -l 'Subject: envelope' $tmp/pf/mail/inbox/new/*) | sort -u | sed 's/Return-Path: //'"

# Stages that fail: each gives its on-error outcome.
send slow --to alice@example.test --header "Subject: SLOWME"
check_grep 'a stage past its timeout: on-error tempfail' "$tmp/slow" '<\*\* 451 4\.7\.1 Try again later'
check_grep '... logged' "$tmp/bridge.log" 'stage slow at data failed: timeout after 1s'
send exit1 --to alice@example.test --header "Subject: EXIT1ME"
check_grep 'a stage exiting 1 with on-error accept: delivered' "$tmp/exit1" '<- +250 2\.0\.0 Ok: queued'
send killed --to alice@example.test --header "Subject: KILLME"
check_grep 'a stage killed by a signal with on-error reject: 5xx' "$tmp/killed" '<\*\* 550 5\.7\.1 Message rejected'
check_grep '... logged' "$tmp/bridge.log" 'stage killed at data failed: killed by signal 9'
send garbage --to alice@example.test --header "Subject: GARBAGEME"
check_grep 'a stage writing a broken stream: on-error tempfail' "$tmp/garbage" '<\*\* 451 4\.7\.1'

# Two messages in one SMTP session, with RSET between them as Postfix's
# own client does.
smtp-source -d -m 2 -f two@example.org -t alice@example.test -S "two in one session" -M client2.example.org 127.0.0.1:$pf_port >"$tmp/two" 2>&1
sent=$((sent + 2))
pf_wait_delivered 12
check_out 'two messages in one session both see client and HELO' 2 \
	"grep -l '^X-Seen: client=127.0.0.1 helo=client2.example.org' \$(grep -l '^From: <two@example.org>' $tmp/pf/mail/inbox/new/*) | wc -l"

check 'the bridge is still serving' "kill -0 $bridge_pid"

# Nothing lost: every message sent was delivered, held, or refused to the
# client (who keeps it), and nothing was delivered twice.
sleep 0.5
delivered=$(ls $tmp/pf/mail/inbox/new | wc -l)
refused=$(grep -l '^<\*\* [45][0-9][0-9]' $tmp/reject $tmp/later $tmp/slow $tmp/killed $tmp/garbage $tmp/blocked $tmp/early | wc -l)
held=$(pf_queue | grep -c '^[0-9A-F]*!')
check_out "every message accounted for ($delivered delivered incl. 2 copies of a 2-rcpt message and 2 of the envelope test, $held held, 1 discarded, $refused refused)" 0 \
	"echo \$(( $sent + 1 + 1 - $delivered - $held - 1 - $refused ))"
check_out 'no message delivered twice' "" "grep -h '^Message-I[Dd]:' $tmp/pf/mail/inbox/new/* | sort | uniq -d | grep -v . ; grep -h '^Subject: three rcpts' $tmp/pf/mail/inbox/new/* | sed 1,2d"

# The decision log: one JSON line per decision.
check_grep 'decision log: a delivered message' "$tmp/decisions.log" '"phase":"data".*"stages":\[.*"name":"seen".*"action":"accept"'
check_grep 'decision log: the refused recipient' "$tmp/decisions.log" '"phase":"rcpt".*"rcpts":\["alice@example.test","blocked@example.test"\].*"action":"reject","reply":"550 5.1.1 No such user here"'
check_grep 'decision log: the failed stage' "$tmp/decisions.log" '"name":"slow","phase":"data","action":"tempfail","exit":-1,.*"error":"timeout after 1s"'
check_grep 'decision log: queue ids' "$tmp/decisions.log" '"queue_id":"[0-9A-F]+"'
check 'decision log: every line is JSON' "while read -r l; do printf '%s' \"\$l\" | grep -q '^{.*}\$' || exit 1; done <$tmp/decisions.log"

# mf-stat reads what this run left: Postfix's log and the decision log.
# (Postfix logs a delivery a moment after the file is in the Maildir.)
i=0; until [ "$(grep -c 'status=sent' "$tmp/pf/maillog")" -ge "$(pf_delivered)" ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
mf-stat --json "$tmp/pf/maillog" "$tmp/decisions.log" >"$tmp/stat.json" 2>"$tmp/stat.err"
check_out 'mf-stat counts one decision per decision-log line' "\"decisions\": $(wc -l <"$tmp/decisions.log")," "grep '\"decisions\":' $tmp/stat.json | tr -d ' '| sed 's/:/: /'"
check_out 'mf-stat counts the deliveries in the Maildir' "\"delivered\": $(pf_delivered)," "grep '\"delivered\":' $tmp/stat.json | head -1 | tr -d ' ' | sed 's/:/: /'"
check_out '... the held message' '"held": 1,' "grep '\"held\":' $tmp/stat.json | tr -d ' ' | sed 's/:/: /'"
check_out '... and the discarded one' '"discarded": 1,' "grep '\"discarded\":' $tmp/stat.json | tr -d ' ' | sed 's/:/: /'"

# SIGTERM while a message is under way: no new connections, the message
# finishes and is delivered, then the bridge exits 0.
n=$(pf_delivered)
send pause --to alice@example.test --header "Subject: PAUSEME" &
sender=$!
i=0; until [ -e "$tmp/mark/paused" ] || [ $i -gt 200 ]; do i=$((i + 1)); sleep 0.05; done
kill -TERM $bridge_pid
wait $sender
wait $bridge_pid; st=$?
bridge_pid=
check_grep 'SIGTERM waits for the message under way' "$tmp/bridge.log" 'waiting up to 30s for 1 message'
check_grep '... which is taken' "$tmp/pause" '<- +250 2\.0\.0 Ok: queued'
pf_wait_delivered $((n + 1))
check '... and delivered' "grep -l 'Subject: PAUSEME' $tmp/pf/mail/inbox/new/*"
check_out 'then it stops with status 0' 0 "echo $st"
check_grep '... saying so' "$tmp/bridge.log" 'stopped'
done_testing
