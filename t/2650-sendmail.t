#!/bin/sh
# mf-bridge behind a real sendmail 8.17 (t/sendmail.sh): where a field a
# stage puts on top lands, a stage slower than sendmail's own patience,
# and the record of a transaction the client ends with RSET.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
. "$top/t/sendmail.sh"
need_sendmail
chmod 755 "$tmp"
mkdir -p "$tmp/state"; chown games "$tmp/state"
touch "$tmp/decisions.log"; chown nobody "$tmp/decisions.log"

cat >"$tmp/mf.conf" <<CONF
bridge.decision-log $tmp/decisions.log
bridge.stage slow rcpt output=exit -- sh -c 'case "\$RECIPIENT" in slow@*) exec sleep 20;; esac; exit 0'
bridge.stage top data input=message output=message -- sh -c '{ echo "X-Top: first"; cat; }'
CONF
if bridge_start "$tmp/mf.conf" --state-dir "$tmp/state"; then ok 'mf-bridge listens'; else not_ok 'mf-bridge listens'; done_testing; exit 1; fi
# sendmail's own reply timeout (R) left at its default of 10 seconds.
if sm_start "$bridge_addr" 'C:30s;S:30s;E:5m'; then ok 'sendmail listens, mf-bridge as its milter'; else not_ok 'sendmail listens'; done_testing; exit 1; fi

sm_send --from a@example.org --to b@mf.test --body hello
check_grep 'sendmail takes the message' "$tmp/swaks.log" '^<- +250 2\.0\.0 .* Message accepted'
i=0; until ls "$sm_dir/mail"/b.* >/dev/null 2>&1 || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
f=$(ls "$sm_dir/mail"/b.* 2>/dev/null | head -1)
if [ -n "$f" ]; then
	# Return-Path, then sendmail's Received (three lines), then the field.
	awk '/^[^ \t]/ { n++; print n ": " $1 }' "$f" | sed -n 1,3p >"$tmp/order"
	check_out "a field put on top lands just below sendmail's own Received:" '1: Return-Path:
2: Received:
3: X-Top:' "cat $tmp/order"
else
	not_ok 'the message is delivered' "$(ls "$sm_dir/mail")" "$(tail -5 "$sm_dir/maillog")"
fi
check_grep "sendmail logs the insert at index 1" "$sm_dir/maillog" 'Milter \(mf\) insert \(1\): header: X-Top: first'

# A recipient whose stage hangs: mf's 8 s default ends it before sendmail's
# 10 s, so only that recipient is tempfailed and the session goes on.
cat >"$tmp/slow.py" <<'P'
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=60)
s.ehlo('client.example')
print('mail', s.mail('a@example.org')[0])
print('rcpt slow', *s.rcpt('slow@mf.test'))
print('rcpt fast', s.rcpt('fast@mf.test')[0])
print('data', s.data(b'Subject: slow\r\n\r\nbody\r\n')[0])
s.mail('c@example.org'); s.rcpt('rset@mf.test'); s.rset()
print('rset', 'done')
s.quit()
P
run "python3 $tmp/slow.py $sm_port"
cp "$tmp/out" "$tmp/slow.out"
check_grep 'the slow recipient is told 451 by mf, not by sendmail' "$tmp/slow.out" "^rcpt slow 451 b'4\\.7\\.1 Try again later'"
check_grep '... the next recipient of the session is taken' "$tmp/slow.out" '^rcpt fast 250$'
check_grep '... and the message with it' "$tmp/slow.out" '^data 250$'
check_nogrep 'sendmail never gave up on the milter' "$sm_dir/maillog" 'timeout|error state'
sleep 1
check_grep 'the stage failure is logged' "$tmp/bridge.log" 'stage slow at rcpt failed: timeout after 8s'
check_grep 'the transaction ended by RSET has its record' "$tmp/decisions.log" '"phase":"abort".*"rcpts":\["rset@mf.test"\].*"name":"slow","phase":"rcpt","action":"continue"'

bridge_stop
sm_stop
done_testing
