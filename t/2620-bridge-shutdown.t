#!/bin/sh
# SIGTERM keeps --shutdown-timeout: at the deadline the stages still
# running end, with all they started, and the MTA is told to retry.
# Behind a real private Postfix (t/postfix.sh), three messages at once in
# a stage of 60 s, --shutdown-timeout 3s.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
mkdir -p "$tmp/mark" && chmod 1777 "$tmp/mark"
chmod 755 "$tmp" # the stage user runs $tmp/slow: mf-bridge checks it may, at start
cat >"$tmp/slow" <<SH
#!/bin/sh
cat >/dev/null
sleep 600 &
echo \$\$ \$! >$tmp/mark/\$\$.new && mv $tmp/mark/\$\$.new $tmp/mark/\$\$
sleep 60
SH
chmod 755 "$tmp/slow"
cat >"$tmp/mf.conf" <<CONF
bridge.stage slow data timeout=120s on-error=accept input=message output=exit reply="451 4.3.2 Bridge stopping, try later" -- $tmp/slow
CONF
: >"$tmp/bridge.log"
mf-bridge --config "$tmp/mf.conf" --user nobody --stage-user games milter --listen inet:127.0.0.1:0 --shutdown-timeout 3s >"$tmp/bridge.out" 2>>"$tmp/bridge.log" &
bridge_pid=$!
i=0
until grep -q 'listening on' "$tmp/bridge.log"; do
	i=$((i + 1)); [ $i -gt 100 ] && break
	sleep 0.05
done
bridge_addr=inet:$(sed -n 's/.*listening on tcp:\([0-9.:]*\) .*/\1/p' "$tmp/bridge.log" | tail -1)
if [ "$bridge_addr" = inet: ]; then not_ok 'mf-bridge listens' "$(cat "$tmp/bridge.log")"; done_testing; exit 1; fi
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }

for n in 1 2 3; do
	swaks --server 127.0.0.1:$pf_port --helo client.example.org --from s@example.org --to alice@example.test --header "Subject: slow $n" >"$tmp/swaks$n" 2>&1 &
	eval "swaks$n=\$!"
done
i=0; until [ "$(ls "$tmp/mark" | grep -vc new)" -ge 3 ] || [ $i -gt 400 ]; do i=$((i + 1)); sleep 0.05; done
check_out 'three messages are in the 60 s stage' 3 "ls $tmp/mark | grep -vc new"
start=$(date +%s)
kill -TERM $bridge_pid
wait $bridge_pid; st=$?
took=$(( $(date +%s) - start ))
bridge_pid=
wait $swaks1 $swaks2 $swaks3
if [ $took -le 7 ]; then ok "SIGTERM with --shutdown-timeout 3s: the bridge is gone in ${took}s"
else not_ok "SIGTERM with --shutdown-timeout 3s: the bridge is gone in ${took}s" "$(tail -5 "$tmp/bridge.log")"; fi
check_out '... with status 0' 0 "echo $st"
check_grep '... saying what it did' "$tmp/bridge.log" '3 message\(s\) still under way at the deadline: their stages are ended'
for n in 1 2 3; do
	check_grep "message $n: the MTA is told to retry, by the stage's reply" "$tmp/swaks$n" '<\*\* +451 4\.3\.2 Bridge stopping'
done
left=
for f in "$tmp/mark"/*; do
	for p in $(cat "$f"); do kill -0 "$p" 2>/dev/null && left="$left $p"; done
done
if [ -z "$left" ]; then ok 'no stage, nor what it started, outlives the bridge'
else not_ok 'no stage, nor what it started, outlives the bridge' "still running:$left"; kill -9 $left; fi
check_out 'nothing was delivered' 0 "ls $tmp/pf/mail/inbox/new 2>/dev/null | wc -l"
done_testing
