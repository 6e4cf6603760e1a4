#!/bin/sh
# mf-bridge qmail-queue as the program QMAILQUEUE names, behind a real
# notqmail qmail-smtpd under tcpserver: mail sent with swaks, the outcome
# read from the SMTP replies, the test Maildir, qmail-send's log, the
# quarantine and the decision log. With QM_FRONT=server (t/2505) the same
# through mf-qmail-queue-client and a resident mf-bridge qmail-server.
. "$(dirname "$0")/lib.sh"
. "$top/t/qmail.sh"
need_qmail
front=${QM_FRONT:-shim}
if [ "$front" = server ] && [ ! -x "$top/bin/mf-qmail-queue-client" ]; then
	why="bin/mf-qmail-queue-client was not built (no C compiler at make all)"
	if [ -n "${CI:-}" ]; then not_ok 'mf-qmail-queue-client built' "$why"; done_testing; exit 1; fi
	echo "1..0 # SKIP $why"; exit 0
fi

mkdir -p "$tmp/lists" "$tmp/state" "$tmp/spool" "$tmp/quar"
cat >"$tmp/lists/10-clients.list" <<'L'
match: client-addr
action: block
reply: 550 5.7.1 Your address is blocked here
127.0.0.2
L
cat >"$tmp/lists/20-senders.list" <<'L'
match: sender
action: block
reply: 550 5.7.1 Mail from this sender is refused
spammer@example.org
L
cat >"$tmp/lists/30-rcpts.list" <<'L'
match: rcpt
action: block
reply: 550 5.1.1 No such user here
blocked@example.test
L
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
bridge.decision-log $tmp/decisions.log
bridge.spool-dir $tmp/spool
bridge.qmail-queue $tmp/q/bin/qmail-queue
bridge.quarantine-dir $tmp/quar
bridge.stage lists connect,mail,rcpt mf-lists check
bridge.stage seen data input=message output=headers -- sh -c 'echo "X-Seen: client=\$TCPREMOTEIP helo=\$HELO"'
bridge.stage later data input=message output=exit 0=tempfail 1=continue reply="451 4.7.1 Later please" -- grep -q "^Subject: TEMPFAILME"
bridge.stage hold data input=message output=exit 0=quarantine 1=continue -- grep -q "^Subject: HOLDME"
bridge.stage drop data input=message output=exit 0=discard 1=continue -- grep -q "^Subject: DROPME"
bridge.stage broken data input=message output=exit -- sh -c 'if grep -q "^Subject: BREAKME"; then exit 3; fi'
bridge.stage slow data input=message output=exit -- sh -c 'grep -q "^Subject: SLOWME" && sleep 30; exit 0'
bridge.stage envelope data -- sed "1,/^\$/ s/^Mf-Rcpt-To: <drop@example.test>\$/Mf-Rcpt-To: <added@example.test>/"
CONF
chown -R qmaild "$tmp/state" "$tmp/spool" "$tmp/quar"
touch "$tmp/decisions.log"; chown qmaild "$tmp/decisions.log"
if [ "$front" = server ]; then
	# The server as the user qmail-smtpd runs as, as the shim would be:
	# stages in-process, the socket its own.
	chmod 755 "$tmp"; mkdir -p "$tmp/run"; chown qmaild "$tmp/run"
	: >"$tmp/server.log"
	start_server() {
		MF_CONFIG=$tmp/mf.conf PATH="$top/bin:/usr/bin:/bin" setpriv --reuid="$(id -u qmaild)" --regid="$(id -g qmaild)" --clear-groups \
			mf-bridge qmail-server --qmail-listen unix:"$tmp/run/qmail.sock" --shutdown-timeout 1s 2>>"$tmp/server.log" &
		server_pid=$!
		i=0
		until [ "$(grep -c 'qmail-server: listening on' "$tmp/server.log")" -gt "$starts" ]; do
			i=$((i + 1)); [ $i -gt 100 ] && { sed 's/^/# /' "$tmp/server.log"; return 1; }
			sleep 0.05
		done
		starts=$((starts + 1))
	}
	starts=0
	start_server || { not_ok 'mf-bridge qmail-server starts'; done_testing; exit 1; }
	qm_queue=$top/bin/mf-qmail-queue-client
	qm_env=",MF_QMAIL_SOCKET=\"$tmp/run/qmail.sock\""
	front_log=$tmp/server.log
	at_exit 'kill "$server_pid" 2>/dev/null'
else
	ln -s "$top/bin/mf-bridge" "$tmp/mf-qmail-queue"
	qm_queue=$tmp/mf-qmail-queue
	qm_env=",MF_CONFIG=\"$tmp/mf.conf\",PATH=\"$top/bin:/usr/bin:/bin\""
	front_log=$tmp/smtpd.log
fi
qm_start || { not_ok 'qmail starts'; done_testing; exit 1; }
ok "qmail-smtpd runs with QMAILQUEUE pointing at $(basename "$qm_queue")"

# 1. Clean mail: delivered byte for byte, with the chain's header added.
printf 'From: a@example.org\nTo: test@example.test\nSubject: clean\nMessage-Id: <clean@example.org>\n\nline one\n.leading dot\nlast line' >"$tmp/clean.eml"
cp "$tmp/clean.eml" "$tmp/sent"
qm_swaks --from a@example.org --to test@example.test --data @"$tmp/clean.eml"
check_grep 'clean mail gets 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
qm_wait_delivered 1
m=$(qm_mail 'Subject: clean')
if [ -n "$m" ]; then ok 'clean mail is delivered to the Maildir'; else not_ok 'clean mail is delivered to the Maildir' "$(cat "$tmp/swaks")" "$(cat "$tmp/smtpd.log")"; fi
m=${m:-/dev/null}
check_grep 'the real qmail-queue put its Received line on top' "$m" '^Received: \(qmail [0-9]+ invoked from network\)'
# Everything below qmail-smtpd's own Received line is what was sent,
# with the chain's field at the end of the header.
sed '1,/^  by mx\.example\.test with SMTP;/d' "$m" >"$tmp/got"
# swaks ends DATA with an empty line of its own when the data ends in a
# newline: sent without it, the last line is ended by swaks.
printf '\n' >>"$tmp/sent"
{ sed '/^$/,$d' "$tmp/sent"; echo 'X-Seen: client=127.0.0.1 helo=client.example.test'; sed -n '/^$/,$p' "$tmp/sent"; } >"$tmp/want"
if cmp -s "$tmp/got" "$tmp/want"; then ok 'the message is delivered byte for byte, the chain header added'
else not_ok 'the message is delivered byte for byte, the chain header added' "$(diff "$tmp/want" "$tmp/got")"; fi

# 2. Refusals through the custom error descriptor (fd 6).
qm_swaks --from a@example.org --to test@example.test --local-interface 127.0.0.2 --header 'Subject: blocked client'
check_grep 'a blocked client gets 554 with the list reply through fd 6' "$tmp/swaks" '<\*\* 554 5\.7\.1 Your address is blocked here'
qm_swaks --from spammer@example.org --to test@example.test --header 'Subject: blocked sender'
check_grep 'a blocked sender gets 554 with the list reply' "$tmp/swaks" '<\*\* 554 5\.7\.1 Mail from this sender is refused'
qm_swaks --from a@example.org --to test@example.test --header 'Subject: TEMPFAILME'
check_grep 'a tempfail gets 451 with its text' "$tmp/swaks" '<\*\* 451 4\.7\.1 Later please'
# in_maildir ERE: how many delivered messages match.
in_maildir() { grep -lE -- "$1" "$tmp/home/Maildir/new/"* 2>/dev/null | wc -l; }
sleep 1
n=$(in_maildir '^Subject: (blocked|TEMPFAILME)')
if [ "$n" = 0 ]; then ok 'no refused message was delivered'; else not_ok 'no refused message was delivered' "$n delivered"; fi

# 3. A refused recipient among three is left out, the others delivered once.
before=$(qm_delivered)
qm_swaks --from a@example.org --to one@example.test,blocked@example.test,two@example.test --header 'Subject: three rcpts'
check_grep 'three recipients: qmail-smtpd says 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
qm_wait_delivered $((before + 2))
sleep 1
n=$(grep -l 'Subject: three rcpts' "$tmp/home/Maildir/new/"* | wc -l)
if [ "$n" = 2 ]; then ok 'the two accepted recipients get one copy each'; else not_ok 'the two accepted recipients get one copy each' "copies: $n"; fi
check_grep '... one for one@' "$tmp/qlog/current" 'starting delivery [0-9]+: msg [0-9]+ to local [a-z-]*one@example\.test'
check_nogrep '... none for blocked@' "$tmp/qlog/current" 'to local .*blocked@example\.test'
check_grep 'the refused recipient has a decision record' "$tmp/decisions.log" '"phase":"rcpt".*"rcpts":\["one@example.test","blocked@example.test"\].*"action":"reject"'

# 4. Envelope edits of a data stage take effect.
before=$(qm_delivered)
qm_swaks --from a@example.org --to drop@example.test --header 'Subject: envelope edit'
qm_wait_delivered $((before + 1))
check_grep 'a recipient changed by a stage is the one delivered to' "$tmp/qlog/current" 'to local [a-z-]*added@example\.test'
check_nogrep '... and the old one is not' "$tmp/qlog/current" 'to local [a-z-]*drop@example\.test'

# 5. Discard: 250, nothing queued.
qm_swaks --from a@example.org --to test@example.test --header 'Subject: DROPME'
check_grep 'a discarded message gets 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
check_grep '... and has a decision record' "$tmp/decisions.log" '"action":"discard"'

# 6. Quarantine: 250, held with its envelope and reason; released, delivered.
qm_swaks --from a@example.org --to held@example.test --header 'Subject: HOLDME'
check_grep 'a quarantined message gets 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
check_status 'quarantine list shows it' 0 "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine list"
check_grep '... with sender, recipient and reason' "$tmp/out" '<a@example.org> <held@example.test>: held by mf stage hold'
id=$(cut -d' ' -f1 "$tmp/out" | head -1)
sleep 1
check_nogrep '... and it was not delivered' "$tmp/qlog/current" 'to local [a-z-]*held@example\.test'
before=$(qm_delivered)
check_status 'quarantine release hands it to the real qmail-queue' 0 "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine release $id"
qm_wait_delivered $((before + 1))
m=$(qm_mail 'Subject: HOLDME')
if [ -n "$m" ]; then ok 'the released message is delivered'; else not_ok 'the released message is delivered' "$(tail -5 "$tmp/qlog/current")"; fi
check_out 'the quarantine is empty after the release' '' "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine list"
qm_swaks --from a@example.org --to held@example.test --header 'Subject: HOLDME'
id=$(MF_CONFIG=$tmp/mf.conf mf-bridge quarantine list | cut -d' ' -f1)
check_status 'quarantine delete removes a held message' 0 "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine delete $id"
check_out '... and the quarantine is empty' '' "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine list"
check_status 'releasing a message that is not there fails' 1 "MF_CONFIG=$tmp/mf.conf mf-bridge quarantine release $id"

# 7. A failing stage: 451, and the message is not lost (not queued, the
# client keeps it).
qm_swaks --from a@example.org --to test@example.test --header 'Subject: BREAKME'
check_grep 'a failing stage gives 451' "$tmp/swaks" '<\*\* 451 '
check_grep '... and is logged' "$front_log" 'stage broken at data failed: exit 3'

# 7b. SIGTERM while a stage runs: a temporary refusal, nothing queued,
# nothing left in the spool.
qm_swaks --from a@example.org --to test@example.test --header 'Subject: SLOWME' &
swaks_pid=$!
pid=
i=0
while [ -z "$pid" ] && [ $i -lt 100 ]; do
	if [ "$front" = server ]; then
		pgrep -u qmaild -x sleep >/dev/null && pid=$server_pid
	else
		for c in $(pgrep -P "$qm_smtpd_pid"); do pid=$(pgrep -P "$c" -x mf-qmail-queue); done
	fi
	i=$((i + 1)); sleep 0.1
done
sleep 0.5
[ -n "$pid" ] && kill -TERM "$pid"
wait $swaks_pid
check_grep 'SIGTERM during a stage: the client gets 451 and keeps the message' "$tmp/swaks" '<\*\* 451 '
sleep 1
n=$(in_maildir '^Subject: SLOWME')
if [ "$n" = 0 ]; then ok '... and nothing was delivered'; else not_ok '... and nothing was delivered' "$n delivered"; fi
if [ "$front" = server ]; then
	wait "$server_pid" 2>/dev/null
	check_grep '... the server waited for it, then ended its stages' "$tmp/server.log" 'still under way at the deadline'
	# 7c. No server: 451, and the client sends again once it is back.
	qm_swaks --from a@example.org --to test@example.test --header 'Subject: server down'
	check_grep 'no server: the client gets 451 and keeps the message' "$tmp/swaks" '<\*\* 451 '
	check_grep '... and the client says why in the smtpd log' "$tmp/smtpd.log" 'mf-qmail-queue-client: connect .*qmail.sock: (No such file|Connection refused)'
	start_server || not_ok 'the server starts again'
	before=$(qm_delivered)
	qm_swaks --from a@example.org --to test@example.test --header 'Subject: server down'
	check_grep '... sent again once the server is back, 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
	qm_wait_delivered $((before + 1))
	n=$(in_maildir '^Subject: server down')
	if [ "$n" = 1 ]; then ok '... and delivered once'; else not_ok '... and delivered once' "$n delivered"; fi
fi

# 8. A 25 MB message goes through in bounded memory.
awk 'BEGIN { printf "From: a@example.org\nTo: big@example.test\nSubject: big\n\n"; for (i = 0; i < 330000; i++) printf "%075d\n", i }' >"$tmp/big.eml"
before=$(qm_delivered)
cat >"$tmp/rss.sh" <<'S'
#!/bin/sh
# Samples the peak resident size of every mf-bridge while it runs.
max=0
while [ ! -f "$1.stop" ]; do
	for p in $(pgrep -x "$2"); do
		r=$(awk '/VmHWM/ { print $2 }' /proc/$p/status 2>/dev/null)
		[ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r && echo $max >"$1"
	done
	sleep 0.05
done
S
echo 0 >"$tmp/rss"
if [ "$front" = server ]; then sh "$tmp/rss.sh" "$tmp/rss" mf-bridge & else sh "$tmp/rss.sh" "$tmp/rss" mf-qmail-queue & fi
rss_pid=$!
qm_swaks --from a@example.org --to big@example.test --data @"$tmp/big.eml"
touch "$tmp/rss.stop"; wait $rss_pid
check_grep 'a 25 MB message gets 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
qm_wait_delivered $((before + 1))
m=$(qm_mail 'Subject: big')
size=$(wc -c <"${m:-/dev/null}")
if [ "$size" -gt 25000000 ]; then ok "... and is delivered whole ($size bytes)"; else not_ok '... and is delivered whole' "size $size"; fi
rss=$(cat "$tmp/rss")
if [ "$rss" -gt 0 ] && [ "$rss" -lt 60000 ]; then ok "... in bounded memory (peak $rss kB)"; else not_ok '... in bounded memory' "peak RSS $rss kB"; fi

# mf-stat on qmail-send's log of this run: its totals are the Maildir's.
qm_queue_empty
inbox=$(qm_delivered)
mf-stat --csv totals "$tmp/qlog/current" >"$tmp/stat" 2>&1
check_grep "mf-stat: delivered equals the Maildir ($inbox)" "$tmp/stat" "^$inbox,delivered$"
check_grep 'mf-stat: no bounce (refusals were at SMTP, never queued)' "$tmp/stat" '^0,bounced$'
records=$(wc -l <"$tmp/decisions.log")
mf-stat --csv totals "$tmp/decisions.log" >"$tmp/stat2" 2>&1
check_grep "mf-stat: one decision per record ($records)" "$tmp/stat2" "^$records,decisions$"
check_grep 'every message has a decision record' "$tmp/decisions.log" '"phase":"data".*"action":"accept"'
check_nogrep 'no spool file is left behind' "$(ls -A "$tmp/spool" | head -1 >"$tmp/spool.ls"; echo "$tmp/spool.ls")" '.'
done_testing
