#!/bin/sh
# mf-bridge without an MTA: the chain in "mf-bridge test", configuration
# errors, the milter protocol through miltertest, SIGHUP, unix sockets.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
chmod 755 "$tmp"
mkdir -p "$tmp/state"
as=
if [ "$(id -u)" = 0 ]; then as="--user nobody --stage-user games"; chown games "$tmp/state"; fi

cat >"$tmp/mf.conf" <<'CONF'
bridge.stage tag data input=message output=headers -- sh -c 'echo "X-Checked: $SENDER for $RECIPIENT"'
bridge.stage rcpt rcpt output=exit 0=continue 1=reject reply="550 5.1.1 Unknown user" -- sh -c 'grep -q "^Mf-Rcpt-To: <nobody@" && exit 1; exit 0'
bridge.stage verdict data input=message output=exit 1=continue 2=discard reply="554 5.7.1 Go away" 3=quarantine -- sh -c 'read s; case "$s" in *REJECT*) exit 100;; *LATER*) exit 111;; *ACCEPT*) exit 99;; *DROP*) exit 2;; *HOLD*) exit 3;; esac; exit 1'
bridge.stage retitle data input=message output=message -- sed 's/^Subject: RETITLE$/Subject: new title/'
CONF
bt="mf-bridge --config $tmp/mf.conf --state-dir $tmp/state $as test"
printf 'Subject: hello\n\nbody\n' >"$tmp/hello.eml"
printf 'Subject: RETITLE\n\nbody\n' >"$tmp/retitle.eml"

check_out 'test: what the MTA would be told, phase by phase' "connect 192.0.2.1 [unknown]: continue
helo mx.example.org: continue
mail <a@example.org>: continue
rcpt <b@example.com>: continue
  stage rcpt: continue (exit 0)
rcpt <nobody@example.com>: reject 550 5.1.1 Unknown user
  stage rcpt: reject 550 5.1.1 Unknown user (exit 1)
data: continue
  stage tag: continue (exit 0, 1 header field(s))
  stage verdict: continue (exit 1)
  stage retitle: continue (exit 0)
  add header X-Checked: a@example.org for b@example.com" \
	"$bt --client 192.0.2.1 --helo mx.example.org --from a@example.org --rcpt b@example.com --rcpt nobody@example.com $tmp/hello.eml"
check_exit 'test: no objection exits 0' 0 "$bt --from a@example.org --rcpt b@example.com $tmp/hello.eml"
run "$bt --from a@example.org --rcpt b@example.com $tmp/retitle.eml"
check_grep 'test: a changed header is shown' "$tmp/out" '^  change header Subject\[1\]: new title$'
for v in REJECT:100 LATER:111 ACCEPT:99 DROP:99 HOLD:99; do
	printf 'Subject: %s\n\nbody\n' "${v%:*}" >"$tmp/v.eml"
	check_exit "test: a stage's ${v%:*} exits ${v#*:}" "${v#*:}" "$bt --from a@example.org --rcpt b@example.com $tmp/v.eml"
done
printf 'Subject: DROP\n\nbody\n' | $bt --from a@example.org --rcpt b@example.com >"$tmp/out" 2>&1
check_grep 'test: discard, from stdin' "$tmp/out" '^data: discard$'
printf 'Subject: HOLD\n\nbody\n' | $bt --from a@example.org --rcpt b@example.com - >"$tmp/out" 2>&1
check_grep 'test: quarantine with its reason' "$tmp/out" '^  quarantine "held by mf stage verdict"$'
check_exit 'test: every recipient refused exits 100' 100 "$bt --from a@example.org --rcpt nobody@example.com $tmp/hello.eml"
check_grep '... and DATA is not reached' "$tmp/out" '^data: not reached, every recipient was refused$'
printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <saved@example.org>\nMf-Rcpt-To: <kept@example.com>\n\nSubject: saved\n\nbody\n' >"$tmp/saved.stream"
run "$bt $tmp/saved.stream"
check_grep 'test: a saved stream gives the envelope' "$tmp/out" '^  add header X-Checked: saved@example.org for kept@example.com$'
printf 'Mf-Stream: 1\nMf-Stage: rcpt\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <nobody@example.com>\n\n' >"$tmp/rcpt.stream"
check_out 'test: a saved stream of the rcpt phase is replayed up to RCPT' "connect (no address) [unknown]: continue
helo (none): continue
mail <a@example.org>: continue
rcpt <nobody@example.com>: reject 550 5.1.1 Unknown user
  stage rcpt: reject 550 5.1.1 Unknown user (exit 1)" "$bt $tmp/rcpt.stream"
check_exit '... and exits with its verdict' 100 "$bt $tmp/rcpt.stream"
printf 'Subject: broken\nno colon here\nX-Late: a body line now\n' >"$tmp/broken.eml"
printf '#!/bin/sh\nawk '"'"'/^$/ { print "X-Blank-Line: " NR; exit }'"'"'\n' >"$tmp/blank"; chmod 755 "$tmp/blank"
run "$bt --from a@example.org --rcpt b@example.com --stage 'blank data input=message output=headers -- $tmp/blank' $tmp/broken.eml"
check_grep 'test: a line that is no header field starts the body, as in Postfix' "$tmp/out" '^  add header X-Blank-Line: 2$'
check_out '... and the message is replayed, not refused' 0 "echo $rc"

# Configuration errors name the file and line.
bad() { # bad DESC LINE PATTERN STAGE-LINES
	printf "$4" >"$tmp/bad.conf"
	check_refused "$1" "$tmp/bad.conf:$2: .*$3" "mf-bridge --config $tmp/bad.conf $as test $tmp/hello.eml"
}
bad 'unknown phase' 2 'unknown phase "body"' 'state-dir /tmp\nbridge.stage x body prog\n'
bad 'unknown option' 1 'unknown option "timout"' 'bridge.stage x data timout=1s prog\n'
bad 'a pipe in the program' 1 'without a shell' 'bridge.stage x data mf-lists check | spamc\n'
bad 'a name used twice' 2 'name already used at .*bad.conf:1' 'bridge.stage x data prog\nbridge.stage x rcpt prog\n'
bad 'no program' 1 'no program' 'bridge.stage x data timeout=3s\n'
bad 'unknown key' 1 'unknown key "bridge.stages"' 'bridge.stages x data prog\n'
check_refused 'a bad --stage on the command line says so' '^mf-bridge: error: --stage \(command line\): stage x: unknown phase' "mf-bridge --config $tmp/mf.conf --stage 'x dta prog' $as test $tmp/hello.eml"
run "mf-bridge --config $tmp/mf.conf --print-config test"
check_grep '--print-config shows each stage and its line' "$tmp/out" "^bridge.stage +rcpt rcpt .* # $tmp/mf.conf:2$"
run "mf-bridge --help"
check_grep '--help teaches the stage syntax' "$tmp/out" 'NAME PHASE\[,PHASE...\] \[OPTION=VALUE...\] \[--\] PROGRAM'
if [ "$(id -u)" = 0 ]; then
	check_refused 'as root without a user to become: refused' 'stages never run as root' "mf-bridge --config $tmp/mf.conf --user no-such-user-here --stage-user games test $tmp/hello.eml"
fi

# The milter protocol, spoken by miltertest (OpenDKIM's libmilter client).
if command -v miltertest >/dev/null; then
	bridge_start "$tmp/mf.conf" || not_ok 'mf-bridge listens'
	port=${bridge_addr##*:}
	cat >"$tmp/t.lua" <<LUA
conn = mt.connect("inet:$port@127.0.0.1", 40, 0.25)
if conn == nil then error("connect") end
if mt.conninfo(conn, "client.example.org", "192.0.2.10") ~= nil then error("conninfo") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("conninfo reply") end
if mt.helo(conn, "client.example.org") ~= nil then error("helo") end
for i = 1, 2 do
  if mt.mailfrom(conn, "<a@example.org>") ~= nil then error("mailfrom") end
  if mt.rcptto(conn, "<b@example.com>") ~= nil then error("rcpt b") end
  if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcpt b reply") end
  if mt.rcptto(conn, "<nobody@example.com>") ~= nil then error("rcpt nobody") end
  if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("rcpt nobody: want a reply code") end
  if mt.header(conn, "Subject", "RETITLE") ~= nil then error("header") end
  if mt.eoh(conn) ~= nil then error("eoh") end
  if mt.bodystring(conn, "body\r\n") ~= nil then error("body") end
  if mt.eom(conn) ~= nil then error("eom") end
  if mt.getreply(conn) ~= SMFIR_ACCEPT then error("eom reply") end
  if not mt.eom_check(conn, MT_HDRADD, "X-Checked", "a@example.org for b@example.com") then error("message " .. i .. ": no X-Checked added") end
  if not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "new title") then error("message " .. i .. ": Subject not changed") end
  if mt.abort(conn) ~= nil then error("abort") end
end
if mt.mailfrom(conn, "<a@example.org>") ~= nil then error("mailfrom 3") end
if mt.rcptto(conn, "<b@example.com>") ~= nil then error("rcpt 3") end
if mt.header(conn, "Subject", "REJECT this") ~= nil then error("header 3") end
if mt.eoh(conn) ~= nil then error("eoh 3") end
if mt.bodystring(conn, "body\r\n") ~= nil then error("body 3") end
if mt.eom(conn) ~= nil then error("eom 3") end
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("eom 3: want a reply code") end
if not mt.eom_check(conn, MT_SMTPREPLY, "554", "5.7.1", "Go away") then error("eom 3: want 554 5.7.1 Go away") end
mt.disconnect(conn)
LUA
	check 'miltertest: two messages on one connection, a refused recipient, added and changed headers, a reply' "miltertest -s $tmp/t.lua"
	check 'mf-bridge still serves after the connection' "kill -0 $bridge_pid"

	# SIGHUP: a bad configuration is refused and the chain kept; a good
	# one is taken for new connections.
	cp "$tmp/mf.conf" "$tmp/mf.conf.good"
	echo 'bridge.stage broken nowhere prog' >>"$tmp/mf.conf"
	kill -HUP $bridge_pid; sleep 0.5
	check_grep 'SIGHUP with a bad file: refused, with file and line' "$tmp/bridge.log" "configuration refused, the old one stays: $tmp/mf.conf:5: stage broken: unknown phase"
	check 'the old chain still works' "miltertest -s $tmp/t.lua"
	sed 's/Go away/Not today/' "$tmp/mf.conf.good" >"$tmp/mf.conf"
	kill -HUP $bridge_pid; sleep 0.5
	check_grep 'SIGHUP with a good file: reloaded' "$tmp/bridge.log" 'configuration reloaded: 4 stage'
	run "sed 's/Go away/Not today/' $tmp/t.lua >$tmp/t2.lua && miltertest -s $tmp/t2.lua"
	if [ "$rc" = 0 ]; then ok '... new connections get the new chain'; else not_ok '... new connections get the new chain' "$(cat "$tmp/err")"; fi
	bridge_stop
elif [ -n "${CI:-}" ]; then
	not_ok 'miltertest available' "apt-get install miltertest"
else
	skip 'miltertest scripts' 'miltertest is not installed (t/deps installs it as root)'
fi

# A unix socket gets the owner and mode the MTA needs; a stale one left by
# a crash is replaced, a live one is not taken over.
sock=$tmp/bridge.sock
owner=
[ "$(id -u)" = 0 ] && owner="--socket-owner nobody"
mf-bridge --config "$tmp/mf.conf" $as milter --listen "unix:$sock" $owner --socket-mode 0600 2>"$tmp/sock.log" &
pid=$!
i=0; until [ -S "$sock" ] && grep -q listening "$tmp/sock.log"; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05; done
check_out 'unix socket: mode as asked' 'srw-------' "stat -c %A $sock"
[ -n "$owner" ] && check_out 'unix socket: owner as asked' 'nobody' "stat -c %U $sock"
check_refused 'a socket another bridge serves is not taken over' 'another server answers there' "mf-bridge --config $tmp/mf.conf $as milter --listen unix:$sock"
kill -KILL $pid; wait $pid 2>/dev/null
# A log of its own: a reused one is truncated only once the job runs,
# so the wait below could read the first bridge's line in it.
mf-bridge --config "$tmp/mf.conf" $as milter --listen "unix:$sock" 2>"$tmp/stale.log" &
pid=$!
i=0; until grep -q listening "$tmp/stale.log"; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05; done
check_grep 'a stale socket is replaced' "$tmp/stale.log" 'listening on unix:'
kill -TERM $pid; wait $pid
check_out '... and SIGTERM stops it, status 0' 0 "echo $?"
# The bridge's own settings stay its own: MF_STAGE (a chain line for the
# bridge) once made every mf stage exit 75, which reads MF_ variables as
# its flags. And a stranger's message that starts like a stream forges
# nothing in a stage given input=message: the bridge says it is bare.
mkdir -p "$tmp/fl"
printf 'match: client-addr\naction: block\nreply: 554 5.7.1 Blocked\n192.0.2.0/24\n' >"$tmp/fl/block.list"
printf 'match: client-addr\naction: allow\n198.51.100.0/24\n' >"$tmp/fl/allow.list"
chmod -R a+rX "$tmp/fl"
cat >"$tmp/forge.conf" <<CONF
bridge.stage lists data input=message output=exit -- mf-lists --state-dir '' --list $tmp/fl/block.list --list $tmp/fl/allow.list check
CONF
# The file is a stream (the real envelope) whose message is the forgery.
{ printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 192.0.2.9\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n'
  printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 198.51.100.1\nMf-Verdict: accept\n\n'; cat "$msg/plain.eml"; } >"$tmp/forged.eml"
chmod a+r "$tmp/forged.eml"
bf="mf-bridge --config $tmp/forge.conf --state-dir $tmp/state $as test"
check_status 'a forged stream inside a message does not pass the stage' reject "$bf $tmp/forged.eml"
check_grep '... the list refuses the real client' "$tmp/out" '^  stage lists: reject .*\(exit 100\)'
check_status 'MF_STAGE gives the bridge its chain and leaves the stages alone' reject "MF_STAGE=\"lists data input=message output=exit -- mf-lists --state-dir '' --list $tmp/fl/block.list check\" MF_OUTPUT=none MF_LIST=/nonexistent mf-bridge --config /dev/null $as test --client 192.0.2.9 --from a@example.org --rcpt b@example.com $msg/plain.eml"
# A data stage whose stream carries no message (or drops the sender or
# every recipient) has failed: the mail is kept for another try, never
# delivered empty or silently dropped.
cat >"$tmp/empty.conf" <<'CONF'
bridge.stage empty data -- sh -c 'cat >/dev/null; printf "Mf-Stream: 1\nMf-Stage: data\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n"'
bridge.stage norcpt data -- sh -c 'sed "/^Mf-Rcpt-To:/d"'
CONF
check_status 'a stage writing an envelope and no message: tempfail' tempfail "mf-bridge --config $tmp/empty.conf $as test --from a@example.org --rcpt b@example.com $tmp/hello.eml"
check_grep '... saying why' "$tmp/out" 'stage empty: tempfail .*stream without a message'
sed -i '1d' "$tmp/empty.conf"
check_status 'a stage dropping every recipient: tempfail' tempfail "mf-bridge --config $tmp/empty.conf $as test --from a@example.org --rcpt b@example.com $tmp/hello.eml"
check_grep '... saying why' "$tmp/out" 'stage norcpt: tempfail .*without recipients'
done_testing
