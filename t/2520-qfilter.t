#!/bin/sh
# A filter written for qmail-qfilter (message on stdin and stdout, the
# envelope on fd 3 in and fd 4 out, error text on fd 5) run unchanged by
# "mf-bridge qfilter" as a stage of the chain, under a real qmail
# (qmail-queue mode) and a real Postfix (milter mode).
. "$(dirname "$0")/lib.sh"
. "$top/t/qmail.sh"
. "$top/t/postfix.sh"
need_qmail
need_postfix

mkdir -p "$tmp/spool"; chmod 755 "$tmp"
cat >"$tmp/qf.sh" <<'EOF2'
#!/bin/sh
# qmail-qfilter style: tags the message, drops the recipient drop@, and
# refuses a message whose subject is QFREJECT with its own text.
t=$(mktemp); cat >"$t"
if grep -q '^Subject: QFREJECT' "$t"; then echo 'D5.7.1 The qfilter filter refuses this' >&5; rm -f "$t"; exit 31; fi
printf 'X-Qfilter: seen %s recipients from %s\n' "$NUMRCPTS" "$ENVSENDER"
cat "$t"; rm -f "$t"
tr '\0' '\n' <&3 | grep -v '^Tdrop@' | grep -v '^$' | tr '\n' '\0' >&4
printf '\0' >&4
EOF2
chmod 755 "$tmp/qf.sh"
cat >"$tmp/mf.conf" <<CONF
bridge.spool-dir $tmp/spool
bridge.qmail-queue $tmp/q/bin/qmail-queue
bridge.stage qf data mf-bridge qfilter -- $tmp/qf.sh
CONF
chown qmaild "$tmp/spool"

# Under qmail.
ln -s "$top/bin/mf-bridge" "$tmp/mf-qmail-queue"
qm_queue=$tmp/mf-qmail-queue
qm_env=",MF_CONFIG=\"$tmp/mf.conf\",PATH=\"$top/bin:/usr/bin:/bin\""
qm_start || { not_ok 'qmail starts'; done_testing; exit 1; }
qm_swaks --from a@example.org --to one@example.test,drop@example.test --header 'Subject: qfilter under qmail'
check_grep 'qmail: a message through the qfilter stage gets 250' "$tmp/swaks" '<-  250 ok [0-9]+ qp [0-9]+'
qm_wait_delivered 1
m=$(qm_mail 'Subject: qfilter under qmail')
check_grep 'qmail: the filter saw the envelope (fd 3 and its environment) and changed the message' "${m:-/dev/null}" '^X-Qfilter: seen 2 recipients from a@example\.org$'
sleep 1
check_grep 'qmail: the recipient kept on fd 4 is delivered' "$tmp/qlog/current" 'to local [a-z-]*one@example\.test'
check_nogrep 'qmail: the recipient the filter left out of fd 4 is not' "$tmp/qlog/current" 'to local [a-z-]*drop@example\.test'
qm_swaks --from a@example.org --to one@example.test --header 'Subject: QFREJECT'
check_grep 'qmail: exit 31 with a D text on fd 5 is a 554 with that text' "$tmp/swaks" '<\*\* 554 5\.7\.1 The qfilter filter refuses this'
qm_stop

# Under Postfix, the same chain as a milter.
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge milter listens'; done_testing; exit 1; }
chmod 1777 "$tmp/spool"
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
swaks --server 127.0.0.1:$pf_port --from a@example.org --to one@example.test,drop@example.test --header 'Subject: qfilter under postfix' >"$tmp/pf1" 2>&1
check_grep 'postfix: a message through the qfilter stage is queued' "$tmp/pf1" '<- +250 2\.0\.0 Ok: queued'
pf_wait_delivered 1
m=$(pf_mail 'Subject: qfilter under postfix')
check_grep 'postfix: the filter changed the message' "${m:-/dev/null}" '^X-Qfilter: seen 2 recipients from a@example\.org$'
sleep 1
check_grep 'postfix: the kept recipient is delivered' "$tmp/pf/maillog" 'to=<one@example\.test>.*status=sent'
check_nogrep 'postfix: the dropped recipient is not' "$tmp/pf/maillog" 'to=<drop@example\.test>.*status=sent'
swaks --server 127.0.0.1:$pf_port --from a@example.org --to one@example.test --header 'Subject: QFREJECT' >"$tmp/pf2" 2>&1
check_grep 'postfix: the filter refusal is a 5xx with its text' "$tmp/pf2" '<\*\* 5[0-9][0-9] 5\.7\.1 The qfilter filter refuses this'
done_testing
