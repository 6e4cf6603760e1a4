#!/bin/sh
# Nothing a stage starts outlives the stage's run or the bridge: what it
# leaves behind (sleep &, nohup, setsid, a double fork) ends when it
# ends, a kill -9 of the bridge ends its stages and their children, and
# a child left holding stderr does not hold up the message.
. "$(dirname "$0")/lib.sh"
as=
if [ "$(id -u)" = 0 ]; then chmod 755 "$tmp"; as="--user nobody --stage-user games"; fi
mkdir "$tmp/pids" && chmod 1777 "$tmp/pids"
printf 'Subject: x\n\nbody\n' >"$tmp/m.eml"
bt="mf-bridge --config $tmp/empty.conf $as"

# gone DESC FILE...: every pid in FILEs ends within a second.
gone() {
	desc=$1; shift
	[ -n "$(cat "$@" 2>/dev/null)" ] || { not_ok "$desc" "no pid in $*"; return; }
	i=0
	while :; do
		left=
		for p in $(cat "$@"); do
			st=$(sed 's/.*) \([A-Z]\).*/\1/' /proc/$p/stat 2>/dev/null)
			[ -n "$st" ] && [ "$st" != Z ] && left="$left $p"
		done
		[ -z "$left" ] && { ok "$desc"; return; }
		i=$((i + 1))
		if [ $i -gt 50 ]; then not_ok "$desc" "still running after 1 s:$left" "$(ps -o pid,ppid,user,args -p "$(echo $left | tr ' ' ,)")"; kill -9 $left; return; fi
		sleep 0.02
	done
}

stage() { echo "--stage 'left data input=message output=exit -- sh -c \"cat >/dev/null; $1\"'"; }
run "$bt $(stage "sleep 600 & echo \\\$! >$tmp/pids/bg") test $tmp/m.eml"
check_out 'a stage that leaves sleep 600 & behind is done' 0 "echo $rc"
gone '... and the sleep has ended within 1 s' "$tmp/pids/bg"
run "$bt $(stage "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo \\\$! >$tmp/pids/setsid") test $tmp/m.eml"
gone 'setsid sleep 600 & ends with the stage' "$tmp/pids/setsid"
run "$bt $(stage "nohup sleep 600 >/dev/null 2>&1 & echo \\\$! >$tmp/pids/nohup") test $tmp/m.eml"
gone 'nohup sleep 600 & ends with the stage' "$tmp/pids/nohup"
cat >"$tmp/double" <<SH
#!/bin/sh
cat >/dev/null
( setsid sh -c 'echo \$\$ >$tmp/pids/double; exec sleep 600' </dev/null >/dev/null 2>&1 & )
while [ ! -s $tmp/pids/double ]; do sleep 0.01; done
SH
chmod 755 "$tmp/double"
run "$bt --stage 'double data input=message output=exit -- $tmp/double' test $tmp/m.eml"
gone 'a double-forked, setsid child ends with the stage' "$tmp/pids/double"

# A child holding stderr open: the message is not held up for it.
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms); run "$bt $(stage "exit 0") test $tmp/m.eml"; base=$(($(ms) - t0))
t0=$(ms); run "$bt $(stage "sleep 30 & exit 0") test $tmp/m.eml"; held=$(($(ms) - t0))
if [ $((held - base)) -lt 500 ]; then ok "a child holding stderr open costs $((held - base)) ms (alone: $base ms)"
else not_ok "a child holding stderr open costs $((held - base)) ms (alone: $base ms)" "want under 500 ms"; fi

# kill -9 of the bridge while its stage runs.
for mode in root service; do
	cmd="$bt"
	if [ $mode = service ]; then
		[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null || { skip 'kill -9 of a bridge started as its service user' 'needs root and setpriv to start it so'; continue; }
		cmd="setpriv --reuid nobody --regid nogroup --clear-groups mf-bridge --config $tmp/empty.conf"
	elif [ "$(id -u)" != 0 ]; then
		mode=user
	fi
	rm -f "$tmp/pids/k"
	sh -c "exec $cmd --stage 'k data input=message output=exit timeout=120s -- sh -c \"sleep 600 & echo \\\$\\\$ \\\$! >$tmp/pids/k.new; mv $tmp/pids/k.new $tmp/pids/k; wait\"' test $tmp/m.eml" >"$tmp/k.out" 2>&1 &
	bridge=$!
	i=0; until [ -s "$tmp/pids/k" ] || [ $i -gt 250 ]; do i=$((i + 1)); sleep 0.02; done
	if [ ! -s "$tmp/pids/k" ]; then not_ok "kill -9 of the bridge ($mode)" "the stage did not start: $(cat "$tmp/k.out")"; kill -9 $bridge; continue; fi
	kill -9 $bridge
	wait $bridge 2>/dev/null
	gone "kill -9 of the bridge ($mode) mid-stage: the stage and its child end within 1 s" "$tmp/pids/k"
done
done_testing
