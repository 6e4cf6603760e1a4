#!/bin/sh
# mf-bridge check: the configuration as a whole, every section and stage
# program, with file:line and exit 75; milter start and SIGHUP refuse the
# same, and mf-bridge test exits 75 on it, never 111.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
chmod 755 "$tmp"
mkdir -p "$tmp/state" "$tmp/lists"
as=
if [ "$(id -u)" = 0 ]; then as="--user nobody --stage-user games"; chown games "$tmp/state"; fi
cp "$top/etc/lists/"*.list "$tmp/lists/"
chmod -R a+rX "$tmp/lists"
good() {
	cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
quota.rule per-sender key=sender limit=30/1m
bridge.stage lists rcpt,data mf-lists check
bridge.stage quota data mf-quota check
CONF
}
B="mf-bridge --config $tmp/mf.conf $as"
good
check_status 'a good file passes' 0 "$B check"
check_grep '... and says which commands checked it' "$tmp/out" 'good: 2 stage\(s\); also checked by mf-lists, mf-quota'

# bad DESC PATTERN LINE...: the good file with LINE appended is refused,
# the error matching PATTERN.
bad() {
	desc=$1 pat=$2; shift 2
	good; for l in "$@"; do printf '%s\n' "$l" >>"$tmp/mf.conf"; done
	check_refused "check: $desc" "$pat" "$B check"
}
bad 'a typo in the lists section' "mf\\.conf:4: stage lists: mf-lists: .*mf\\.conf:6: unknown key \"lists\\.dirr\"" 'lists.dirr /tmp'
bad 'a key of a section no command owns' 'mf\.conf:6: unknown key "list\.dir"' 'list.dir /tmp'
bad 'a bad quota rule' 'mf\.conf:6: quota\.rule: key "nothing"' 'quota.rule broken key=nothing limit=x'
bad 'a stage program that does not exist' 'mf\.conf:6: stage spam: program "spamcc" not found on PATH' 'bridge.stage spam data input=message output=message -- spamcc'
bad 'an empty program word' 'mf\.conf:6: stage x: empty program name' 'bridge.stage x data ""'
printf '#!/bin/sh\nexit 0\n' >"$tmp/noexec"; chmod 644 "$tmp/noexec"
bad 'a stage program that is not executable' "stage noexec: program $tmp/noexec.*(not executable|may not run)" "bridge.stage noexec data input=message output=exit -- $tmp/noexec"
printf 'match: sender\naction: block\nspam.example\n' >"$tmp/lists/60-bare.list"; chmod 644 "$tmp/lists/60-bare.list"
bad 'a list file that does not parse, with its line' '60-bare\.list:3: .*write @spam\.example' ''
rm "$tmp/lists/60-bare.list"
# A machine with mf-bridge, mf-lists and mf-quota only: a scan section
# names a command that is not there.
mkdir -p "$tmp/few"; cp "$top/bin/mf-bridge" "$top/bin/mf-lists" "$top/bin/mf-quota" "$tmp/few/"; chmod -R a+rX "$tmp/few"
good; echo 'scan.engine av clamd addr=unix:/run/clamd.sock' >>"$tmp/mf.conf"
check_refused 'check: a section of a command not installed' 'mf\.conf:6: section scan is read by mf-scan, which is not installed' "PATH=$tmp/few:/usr/bin:/bin $tmp/few/mf-bridge --config $tmp/mf.conf $as check"
printf 'state redis://127.0.0.1:1/0\n' >"$tmp/redis.line"
bad 'a state store that does not answer' 'stage quota: mf-quota: state.*127\.0\.0\.1:1' "$(cat "$tmp/redis.line")"
rm -f "$tmp/redis.line"

# mf-bridge test: the same check; exit 75, not the tempfail of a stage
# that cannot start.
good; echo 'bridge.stage spam data input=message output=message -- spamcc' >>"$tmp/mf.conf"
check_refused 'test: a missing stage program is an error, exit 75' 'stage spam: program "spamcc" not found' "$B test --from a@example.org --rcpt b@example.com $msg/plain.eml"
good; echo 'lists.dirr /tmp' >>"$tmp/mf.conf"
check_refused 'test: a typo in another section is an error' 'unknown key "lists\.dirr"' "$B test --from a@example.org --rcpt b@example.com $msg/plain.eml"

# --print-config and --check-config need no sub-command.
good
check_status 'mf-lists --print-config without a sub-command' 0 "mf-lists --config $tmp/mf.conf --print-config"
check_grep '... prints the settings' "$tmp/out" "^lists\\.dir +$tmp/lists +# $tmp/mf\\.conf:2$"
check_status 'mf-lists --check-config without a sub-command' 0 "mf-lists --config $tmp/mf.conf --check-config"
check_status 'mf-quota --check-config' 0 "mf-quota --config $tmp/mf.conf --check-config"

# milter start and SIGHUP refuse what check refuses.
good; echo 'lists.dirr /tmp' >>"$tmp/mf.conf"
port=$(free_port)
run "timeout 10 $B milter --listen inet:127.0.0.1:$port"
[ "$rc" = 75 ] && grep -q 'unknown key "lists.dirr"' "$tmp/err" && ok 'milter refuses to start on a typo in another section' || not_ok 'milter refuses to start on a typo in another section' "exit $rc" "$(cat "$tmp/err")"
good
: >"$tmp/bridge.log"
$B milter --listen inet:127.0.0.1:$port >"$tmp/bridge.out" 2>"$tmp/bridge.log" &
pid=$!
i=0; while [ $i -lt 50 ] && ! grep -q listening "$tmp/bridge.log"; do sleep 0.1; i=$((i+1)); done
check_grep 'milter starts on a good file' "$tmp/bridge.log" 'listening on'
echo 'bridge.stage spam data input=message output=message -- spamcc' >>"$tmp/mf.conf"
kill -HUP $pid; sleep 1
check_grep 'SIGHUP with a missing stage program: refused, with file and line' "$tmp/bridge.log" "configuration refused, the old one stays: $tmp/mf.conf:6: stage spam: program \"spamcc\" not found"
good
kill -HUP $pid; sleep 1
check_grep 'SIGHUP with the good file again: reloaded' "$tmp/bridge.log" 'configuration reloaded: 2 stage'
kill $pid; wait $pid 2>/dev/null
done_testing
