#!/bin/sh
# Dynamic lists: add, show, del, expire from the command line, checked
# after the static lists.
. "$(dirname "$0")/lib.sh"

mkdir "$tmp/lists"
printf 'match: client-addr\naction: allow\n10.0.0.0/8\n' >"$tmp/lists/10-allow.list"
L="mf-lists --dir $tmp/lists"
C="$L check --output none"
check_exit 'before: a client passes' 0 "$C --client 203.0.113.5 </dev/null"
check_out 'add says what it did' "203.0.113.5 added to attackers, never expires" "USER=alice $L add attackers 203.0.113.5 --ttl 0 --reason 'dictionary attack'"
check_exit 'after: the client is rejected' 100 "$C --client 203.0.113.5 </dev/null"
check_grep '... and the log names the dynamic list' "$tmp/err" 'reject: client-addr 203\.0\.113\.5 in list attackers \(dynamic:attackers:1: 203\.0\.113\.5\)'
check 'add a network and a sender domain' "$L add attackers 198.51.100.0/24 && $L add spammers @spam.example --ttl 1h"
check_exit 'a client in the network is rejected' 100 "$C --client 198.51.100.77 </dev/null"
check_exit 'a sender at the domain is rejected' 100 "$C --client 192.0.2.1 --from x@SPAM.example </dev/null"
check_exit 'the domain as a recipient is not matched' 0 "$C --client 192.0.2.1 --rcpt x@spam.example </dev/null"
check 'a static allow entry beats a dynamic block' "$L add attackers 10.1.2.3"
check_exit '... the allowed client is accepted' 99 "$C --client 10.1.2.3 </dev/null"
run "$L show"
check_grep 'show: entry, never expires, who, why' "$tmp/out" '^attackers	203\.0\.113\.5	never expires	added [0-9T:-]+Z by mf-lists add by alice	dictionary attack$'
check_grep 'show: an expiry' "$tmp/out" '^spammers	@spam\.example	expires [0-9T:-]+Z	'
run "$L show spammers"
n=$(wc -l <"$tmp/out")
[ "$n" = 1 ] && ok 'show LIST shows that list only' || not_ok 'show LIST shows that list only' "$n lines"
run "$L why --client 198.51.100.77"
check_grep 'why names the dynamic entry' "$tmp/out" '^dynamic:attackers:[0-9]+: 198\.51\.100\.0/24	client-addr 198\.51\.100\.77 matches \(list attackers, block\)'
check_exit 'a 4xx dynamic reply tempfails' 111 "$C --dynamic-reply '451 4.7.1 Not now' --client 203.0.113.5 </dev/null"
check_out 'del' "203.0.113.5 deleted from attackers" "$L del attackers 203.0.113.5"
check_exit '... and the client passes again' 0 "$C --client 203.0.113.5 </dev/null"
check_exit 'del of an entry not there: exit 1, not the 75 of an error' 1 "$L del attackers 203.0.113.5"
check_grep '... and says so' "$tmp/err" 'warning: 203\.0\.113\.5 is not on dynamic list attackers'
check_refused 'a bad entry is refused' 'host bits set' "$L add attackers 192.0.2.7/24"
check_refused 'two entries at once' 'one entry per line' "$L add attackers '192.0.2.7 192.0.2.8'"
check_refused 'a bad list name' 'list name' "$L add 'a/b' 192.0.2.7"
check 'an entry for a second' "$L add brief 192.0.2.99 --ttl 1s"
check_exit '... blocks' 100 "$C --client 192.0.2.99 </dev/null"
sleep 1.5
check_exit '... and then no more' 0 "$C --client 192.0.2.99 </dev/null"
check_out 'expire drops it' "1 expired entries dropped" "$L expire"
check_exit 'no state directory: no dynamic lists, no error' 0 "$C --state-dir '' --client 198.51.100.77 </dev/null"
done_testing
