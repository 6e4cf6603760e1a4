#!/bin/sh
# Stages cannot reach what is not theirs: not the bridge (its descriptors
# hold every message in flight), not their supervisor, not another
# message's stage. Started as root, the bridge runs as --user and its
# stages as --stage-user; started as its service user, it is at least
# not dumpable.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root, to start the bridge and its stages as users of their own"
	exit 0
fi
chmod 755 "$tmp"
# A system account that owns no mail stands for mf-stage.
stage_user=games
stage_uid=$(id -u $stage_user)
mkdir "$tmp/share" && chmod 1777 "$tmp/share"
printf 'Subject: a\n\nnothing here\n' >"$tmp/a.eml"
printf 'Subject: b\n\nSECRET-OF-B\n' >"$tmp/b.eml"

# The probe: what it could reach, one header field each.
cat >"$tmp/probe" <<'SH'
#!/bin/sh
cat >/dev/null
r() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
bridge=$(sed 's/.*) [A-Za-z] \([0-9]*\) .*/\1/' /proc/$PPID/stat)
echo "X-Uid: $(id -u)"
echo "X-Home: $HOME"
echo "X-Ls-Parent: $(r ls /proc/$PPID/fd)"
echo "X-Kill-Parent: $(r kill -0 $PPID)"
echo "X-Ls-Bridge: $(r ls /proc/$bridge/fd)"
echo "X-Kill-Bridge: $(r kill -0 $bridge)"
echo "X-Own-Stderr: $(r sh -c 'echo said >/dev/stderr')"
if [ -n "${SHARE:-}" ]; then
	i=0; while [ ! -s "$SHARE/b" ] && [ $i -lt 500 ]; do i=$((i + 1)); sleep 0.01; done
	b=$(cat "$SHARE/b")
	echo "X-Other-Stdin: $(timeout 2 head -c 200 /proc/$b/fd/0 2>/dev/null | tr -cd 'A-Z-')"
	echo "X-Other-Stderr: $(r timeout 2 head -c 1 /proc/$b/fd/2)"
	touch "$SHARE/done"
fi
SH
# The other message's stage: it holds its message on stdin, unread,
# until the probe is done.
cat >"$tmp/holder" <<'SH'
#!/bin/sh
echo $$ >"$SHARE/b"
i=0; while [ ! -e "$SHARE/done" ] && [ $i -lt 1000 ]; do i=$((i + 1)); sleep 0.01; done
cat >/dev/null
SH
chmod 755 "$tmp/probe" "$tmp/holder"
# SHARE reaches the stages by the stage line: they get none of the
# bridge's environment beyond an allow-list.
probe="--stage 'probe data input=message output=headers -- env SHARE=$tmp/share $tmp/probe'"
alone="--stage 'probe data input=message output=headers -- $tmp/probe'" # no other message to reach
holder="--stage 'holder data input=message output=exit -- env SHARE=$tmp/share $tmp/holder'"

# Started as root: two bridges, two messages, their stages at once.
SHARE=$tmp/share HOME=/root sh -c "mf-bridge --config $tmp/empty.conf --user nobody --stage-user $stage_user $holder test $tmp/b.eml" >"$tmp/holder.out" 2>&1 &
holder_pid=$!
run "SHARE=$tmp/share HOME=/root mf-bridge --config $tmp/empty.conf --user nobody --stage-user $stage_user $probe test $tmp/a.eml"
wait $holder_pid
check_grep 'as root: the stage runs as --stage-user' "$tmp/out" "add header X-Uid: $stage_uid\$"
check_nogrep '... without root'"'"'s HOME' "$tmp/out" 'X-Home: /root'
check_grep '... cannot list its parent'"'"'s descriptors' "$tmp/out" 'X-Ls-Parent: no$'
check_grep '... cannot signal its parent' "$tmp/out" 'X-Kill-Parent: no$'
check_grep '... cannot list the bridge'"'"'s descriptors' "$tmp/out" 'X-Ls-Bridge: no$'
check_grep '... cannot signal the bridge' "$tmp/out" 'X-Kill-Bridge: no$'
check_grep '... cannot read another message'"'"'s stage'"'"'s stdin' "$tmp/out" 'X-Other-Stdin: $'
check_grep '... nor its stderr' "$tmp/out" 'X-Other-Stderr: no$'
check_grep '... but can reopen its own /dev/stderr' "$tmp/out" 'X-Own-Stderr: yes$'
check_grep '... which ran at the same time' "$tmp/holder.out" 'stage holder: continue'
check_refused 'as root, --stage-user root is refused' 'stages never run as root' "mf-bridge --config $tmp/empty.conf --user nobody --stage-user root $probe test $tmp/a.eml"
check_refused '... and --stage-user the same as --user' 'is --user' "mf-bridge --config $tmp/empty.conf --user nobody --stage-user nobody $probe test $tmp/a.eml"
check_refused '... and a --stage-user that does not exist, saying how to make it' 'useradd --system' "mf-bridge --config $tmp/empty.conf --user nobody --stage-user no-such-user-here $probe test $tmp/a.eml"

# Started as the service user: stages share its uid, so only the
# bridge's and its supervisor's descriptors are out of reach (they are
# not dumpable); mf-bridge(8) says the rest.
if command -v setpriv >/dev/null; then
	run "setpriv --reuid nobody --regid nogroup --clear-groups mf-bridge --config $tmp/empty.conf $alone test $tmp/a.eml"
	check_grep 'as the service user: the stage runs' "$tmp/out" 'X-Uid: 65534$'
	check_grep '... cannot list its parent'"'"'s descriptors' "$tmp/out" 'X-Ls-Parent: no$'
	check_grep '... cannot list the bridge'"'"'s descriptors' "$tmp/out" 'X-Ls-Bridge: no$'
	# ... given CAP_SETUID, CAP_SETGID and CAP_KILL (systemd's
	# AmbientCapabilities=), it separates its stages as if started as root.
	rm -f "$tmp/share/b" "$tmp/share/done"
	SHARE=$tmp/share sh -c "mf-bridge --config $tmp/empty.conf --user nobody --stage-user $stage_user $holder test $tmp/b.eml" >"$tmp/holder.out" 2>&1 &
	holder_pid=$!
	run "SHARE=$tmp/share setpriv --reuid nobody --regid nogroup --clear-groups --inh-caps +setuid,+setgid,+kill --ambient-caps +setuid,+setgid,+kill mf-bridge --config $tmp/empty.conf --stage-user $stage_user $probe test $tmp/a.eml"
	wait $holder_pid
	check_grep 'as the service user with the capabilities: the stage runs as --stage-user' "$tmp/out" "add header X-Uid: $stage_uid\$"
	for what in Ls-Parent Kill-Parent Ls-Bridge Kill-Bridge Other-Stderr; do
		check_grep "... $what: no" "$tmp/out" "X-$what: no\$"
	done
	check_grep '... nor read the other stage'"'"'s stdin' "$tmp/out" 'X-Other-Stdin: $'
	check_refused '... and --stage-user its own user is refused' 'is --user' "setpriv --reuid nobody --regid nogroup --clear-groups --inh-caps +setuid,+setgid,+kill --ambient-caps +setuid,+setgid,+kill mf-bridge --config $tmp/empty.conf --stage-user nobody $probe test $tmp/a.eml"
else
	need setpriv util-linux || skip 'as the service user' 'setpriv missing (apt-get install util-linux)'
fi
done_testing
