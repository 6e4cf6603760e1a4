#!/bin/sh
# Small things that confused: mf-lists show of an address, "not found"
# apart from an error, a bare domain in a sender list, defaults in
# --help, what test offers, relative paths in mf.conf, the example
# configuration tried from the source tree.
. "$(dirname "$0")/lib.sh"
chmod 755 "$tmp"
mkdir -p "$tmp/state"
as=
if [ "$(id -u)" = 0 ]; then as="--user nobody --stage-user games"; chown games "$tmp/state"; fi
L="mf-lists --config $tmp/empty.conf"
$L add abusers 203.0.113.0/24 --reason 'quota rule flood' >/dev/null
$L add spammers @spam.example >/dev/null
run "$L show 203.0.113.66"
check_grep 'show ADDRESS: the network entry that holds it' "$tmp/out" '^abusers	203\.0\.113\.0/24	'
check_nogrep '... and no other' "$tmp/out" 'spammers'
check_out 'show SENDER-DOMAIN: that entry' 'spammers' "$L show @spam.example | cut -f1"
check_exit 'show of what no list holds: exit 1' 1 "$L show 198.18.0.1"
check_grep '... saying so' "$tmp/err" 'no dynamic list 198\.18\.0\.1, and no dynamic entry matches it'
printf 'quota.rule flood key=client-net limit=0/1h action=block:nets for=6h\n' >"$tmp/q.conf"
printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 198.51.100.7\nMf-Mail-From: <a@example.org>\nMf-Rcpt-To: <b@example.com>\n\n' >"$tmp/q.in"
mf-quota --config "$tmp/q.conf" check --input stream --output none <"$tmp/q.in" 2>/dev/null
run "$L show 198.51.100.99"
check_grep 'show ADDRESS: a network a block rule added, as a value' "$tmp/out" '^nets	client-net 198\.51\.100\.0/24	'
check_exit 'del of an entry not there: exit 1' 1 "$L del abusers 198.51.100.1"
check_status 'del of an entry there: 0' 0 "$L del abusers 203.0.113.0/24"
check_exit 'del with the store down: exit 75, an error' 75 "MF_STATE=redis://127.0.0.1:1/0 MF_LOCK_TIMEOUT=300ms $L del abusers 203.0.113.0/24"

printf 'match: sender\naction: block\n\nspam.example\n' >"$tmp/bare.list"
check_refused 'a bare domain in a sender list: refused, with the hint to write @domain' 'bare\.list:4: .*write @spam\.example' "$L --list $tmp/bare.list check --from a@spam.example </dev/null"

run 'mf-bridge --help'
tr -s ' \n' '  ' <"$tmp/out" >"$tmp/help" # help text as one line, however wrapped
check_grep '--help shows the default of -c' "$tmp/help" '--config=FILE [^-]*\(default /etc/mf/mf\.conf\)'
check_grep '... and of --user' "$tmp/help" '--user=USER [^-]*\(default mf\)'
check_grep '... and names check' "$tmp/out" '^  check '
run 'mf-bridge test --help'
check_nogrep 'test --help offers no --decision-log, which test never writes' "$tmp/out" 'decision-log'
check_grep '... but --live' "$tmp/out" '--live'
run 'mf-bridge milter --help'
check_grep 'milter --help offers --decision-log' "$tmp/out" '--decision-log=FILE'

# A relative path in mf.conf is taken from the file's directory.
mkdir -p "$tmp/conf/lists"
cp "$top/etc/lists/20-block-clients.list" "$tmp/conf/lists/"
echo 'lists.dir lists' >"$tmp/conf/mf.conf"
run "cd / && mf-lists --config $tmp/conf/mf.conf --print-config"
check_grep 'a relative lists.dir is below the file' "$tmp/out" "^lists\\.dir +$tmp/conf/lists +#"
check_status '... and used so' reject "cd / && mf-lists --config $tmp/conf/mf.conf check --client 192.0.2.7 </dev/null"

# The example configuration works from the source tree, as it says.
cmd=$(sed -n 's/^#   \(MF_STATE_DIR=.*\) \\$/\1/p' "$top/etc/mf.conf")
args=$(sed -n 's/^#       \(--client .*\)$/\1/p' "$top/etc/mf.conf")
[ -n "$cmd" ] && [ -n "$args" ] && ok 'etc/mf.conf says how to try it' || not_ok 'etc/mf.conf says how to try it'
mkdir "$tmp/state2"; [ -n "$as" ] && chown games "$tmp/state2"
cmd=$(echo "$cmd" | sed "s|\$(mktemp -d)|$tmp/state2|; s| test| $as test|")
run "cd $top && MF_CONFIG= $cmd $args"
[ "$rc" = 100 ] && grep -q 'stage lists: reject 550 5.7.1 Access denied' "$tmp/out" && ok '... and it works: the example lists refuse the example client' || not_ok '... and it works: the example lists refuse the example client' "exit $rc" "$(cat "$tmp/out" "$tmp/err")"
run "cd $top && MF_CONFIG= $cmd --log-format json $args"
check_grep 'log-format json: one JSON object a line, one for the message' "$tmp/err" '^\{"time":"[0-9T:.-]+Z","prog":"mf-bridge","level":"info","msg":"NOQUEUE: rcpt: reject \\"550 5\.7\.1 Access denied\\" from=<a@example\.org> rcpts=1 client=192\.0\.2\.25 stage=lists:reject [0-9.]+ms"\}$'
check_grep '... with the stage'"'"'s reason in text' "$tmp/err" '"msg":"NOQUEUE: stage lists at rcpt: reject 550 5\.7\.1 Access denied; mf-lists: info: reject: client-addr 192\.0\.2\.25 in list 20-block-clients'
done_testing
