#!/bin/sh
# List files: errors with file and line, why, the compiled cache, locks,
# and exit codes for usage errors.
. "$(dirname "$0")/lib.sh"

badlist() { # badlist DESC LINE PATTERN LIST-TEXT
	printf "$4" >"$tmp/bad.list"
	check_refused "$1" "$tmp/bad.list:$2: .*$3" "mf-lists --list $tmp/bad.list check --client 192.0.2.1 <$msg/plain.eml"
}
badlist 'host bits set in a network' 4 'has host bits set.*192\.0\.2\.0/24' 'match: client-addr\naction: block\n\n192.0.2.7/24\n'
badlist 'not an address' 3 'not a host' 'match: client-name\naction: block\nbad!host.example\n'
badlist 'entry kind fits no target' 3 'cannot match' 'match: client-addr\naction: block\nuser@example.org\n'
badlist 'entry before match/action' 1 'before the list says' '192.0.2.1\nmatch: client-addr\naction: block\n'
badlist 'unknown action' 2 'unknown action "deny"' 'match: client-addr\naction: deny\n'
badlist 'unknown target' 1 'unknown match target "ip"' 'match: ip\naction: block\n'
badlist 'reply contradicts action' 3 'needs a 5xx reply' 'match: client-addr\naction: block\nreply: 451 4.7.1 later\n'
badlist 'wildcard' 3 'for the hosts below' 'match: helo\naction: block\n*.example.org\n'
badlist 'two entries on a line' 3 'one entry per line' 'match: helo\naction: block\na.example b.example\n'
badlist 'directive after entries' 4 'before the first entry' 'match: helo\naction: block\na.example\nreply: 550 no\n'
badlist 'no action' 2 'before the list says' 'match: helo\na.example\n'
badlist 'no action at all' 1 'no "action:"' 'match: helo\n'

mkdir "$tmp/lists"
cat >"$tmp/lists/10-allow.list" <<'L'
match: client-addr
action: allow
10.0.0.0/8
L
cat >"$tmp/lists/20-block.list" <<'L'
match: client-addr sender
action: block
10.1.0.0/16     # inside the allowed network, but later
10.1.2.3
@spam.example   # by domain
L
cat >"$tmp/lists/30-tag.list" <<'L'
match: sender
action: tag
@spam.example
L
printf 'not a list\n' >"$tmp/lists/README"
printf 'garbage\n' >"$tmp/lists/40-old.list~"
W="mf-lists --dir $tmp/lists why"
run "$W --client 10.1.2.3 --from x@spam.example"
cp "$tmp/out" "$tmp/why"
check_grep 'why: the allow hit' "$tmp/why" "^$tmp/lists/10-allow.list:3: 10.0.0.0/8	client-addr 10.1.2.3 matches \\(list 10-allow, allow\\)"
check_grep 'why: the most specific block entry' "$tmp/why" "^$tmp/lists/20-block.list:4: 10.1.2.3	client-addr 10.1.2.3 matches"
check_grep 'why: the sender hit' "$tmp/why" "20-block.list:5: @spam.example	sender x@spam.example matches"
check_grep 'why: the tag list too' "$tmp/why" "30-tag.list:3: @spam.example"
check_grep 'why: the first final list decides' "$tmp/why" "^verdict accept by $tmp/lists/10-allow.list:3$"
check_nogrep 'files not ending in .list are not lists' "$tmp/why" 'README|old'
check_exit 'why exits 0' 0 "$W --client 10.1.2.3"
run "$W --client 203.0.113.1 --from a@example.org"
check_grep 'why without a hit says so' "$tmp/out" '^no entry in 3 lists matches$'
check_grep '... and the verdict is continue' "$tmp/out" '^verdict continue$'
run "$W --client 203.0.113.1 $msg/spam.eml"
check_grep 'why reads header From from a message file' "$tmp/out" '^header-from +sender@example\.net$'

# The compiled cache in the state directory.
C="mf-lists --dir $tmp/lists --state-dir $tmp/st check --output none"
check_exit 'first run compiles' 100 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
n=$(ls "$tmp/st/lists/"*.img 2>/dev/null | wc -l)
[ "$n" = 3 ] && ok 'one cached image per list' || not_ok 'one cached image per list' "$n images"
ls -l --time-style=+%s.%N "$tmp/st/lists/" >"$tmp/ls1"
check_exit 'second run uses the cache' 100 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
ls -l --time-style=+%s.%N "$tmp/st/lists/" >"$tmp/ls2"
check 'the cache was not rewritten' "cmp $tmp/ls1 $tmp/ls2"
printf '172.20.0.0/16\n' >>"$tmp/lists/10-allow.list"
check_exit 'an edited list is seen at once' 99 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
mv "$tmp/lists/10-allow.list" "$tmp/x"; sed 's/172.20.0.0/172.21.0.0/' "$tmp/x" >"$tmp/lists/10-allow.list"
check_exit 'a list replaced by rename is seen at once' 100 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
for f in "$tmp/st/lists/"*.img; do printf 'junk' >"$f"; done
check_exit 'a corrupt cache is rebuilt' 100 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
chmod 0555 "$tmp/st/lists"
if [ "$(id -u)" != 0 ]; then
	check_exit 'an unwritable cache still answers' 100 "$C --client 172.20.0.1 --from a@spam.example </dev/null"
else
	# root writes anyway: ask as nobody, who cannot write the cache.
	chmod 0755 "$tmp"
	check_exit 'an unwritable cache still answers' 100 "setpriv --reuid=nobody --regid=nogroup --clear-groups $C --client 172.20.0.1 --from a@spam.example </dev/null"
fi
chmod 0755 "$tmp/st/lists"
check_exit 'no state directory: compiled in memory' 100 "$C --state-dir '' --client 172.20.0.1 --from a@spam.example </dev/null"

# A stuck peer holding the cache lock: give up with 75, do not hang.
if command -v flock >/dev/null; then
	printf '10.202.0.0/16\n' >>"$tmp/lists/10-allow.list"
	abs=$(cd "$tmp/lists" && pwd)/10-allow.list
	lock=$tmp/st/lists/$(printf %s "$abs" | sha256sum | cut -c1-24).img.lock
	flock "$lock" sleep 5 &
	sleep 0.3
	start=$(date +%s)
	run "$C --lock-timeout 1s --client 10.202.0.1 </dev/null"
	el=$(($(date +%s) - start))
	[ "$rc" = 75 ] && grep -q 'timed out' "$tmp/err" && [ "$el" -lt 4 ] && ok 'lock timeout: exit 75 with a clear message' || not_ok 'lock timeout: exit 75 with a clear message' "exit $rc after ${el}s" "$(cat "$tmp/err")"
	wait
	check_exit '... and works once the lock is free' 99 "$C --client 10.202.0.1 </dev/null"
else
	not_ok 'lock timeout # flock(1) missing: install util-linux'
fi

# Usage: exit 75, never 1 or 2; --help and --version exit 0.
check_exit 'unknown command' 75 'mf-lists frobnicate'
check_grep '... says so' "$tmp/err" '^mf-lists: error: .*frobnicate'
check_exit 'unknown flag' 75 'mf-lists check --colour'
check_exit 'no command' 75 'mf-lists'
check_exit 'bad flag value' 75 'mf-lists check --output loud </dev/null'
check_exit 'missing list directory' 75 "mf-lists --dir $tmp/nope check </dev/null"
check_grep '... named' "$tmp/err" "$tmp/nope"
check_exit '--help' 0 'mf-lists --help'
check_grep '--help teaches the exit codes' "$tmp/out" '99 accept, 100 reject'
check_exit '--version' 0 'mf-lists --version'
check_grep '--version names the program' "$tmp/out" '^mf-lists '
done_testing
