#!/bin/sh
# Hostile files and values around the lists and the configuration: a
# FIFO named *.list, a huge configuration line, a network with host bits,
# and header From fields a list must still see through.
. "$(dirname "$0")/lib.sh"

mkdir "$tmp/lists"
printf 'match: client-addr\naction: block\n192.0.2.0/24\n' >"$tmp/lists/10-block.list"
mkfifo "$tmp/lists/20-fifo.list"
check_refused 'a FIFO named *.list is refused' '20-fifo\.list: not a regular file' "timeout 10 mf-lists --dir $tmp/lists check --client 192.0.2.1 </dev/null"
rm "$tmp/lists/20-fifo.list"
mkdir "$tmp/lists/30-dir.list"
check_refused 'so is a directory' '30-dir\.list: is a directory' "timeout 10 mf-lists --dir $tmp/lists check --client 192.0.2.1 </dev/null"
rmdir "$tmp/lists/30-dir.list"

# A 100 MB line: refused with its file and line, in bounded memory.
{ printf 'verbose\n'; head -c 100000000 /dev/zero | tr '\0' x; printf '\n'; } >"$tmp/huge.conf"
check_refused 'a 100 MB configuration line is refused with file:line' 'huge\.conf:2: line longer than 64 KiB' "mf-lists -c $tmp/huge.conf --dir $tmp/lists check --client 192.0.2.1 </dev/null"
if need /usr/bin/time time; then
	run "/usr/bin/time -f 'rss %M' mf-lists -c $tmp/huge.conf --dir $tmp/lists check --client 192.0.2.1 </dev/null"
	rss=$(sed -n 's/^rss //p' "$tmp/err")
	[ -n "$rss" ] && [ "$rss" -lt 65536 ] && ok "... in bounded memory (${rss} KiB)" || not_ok '... in bounded memory' "RSS ${rss:-?} KiB"
else
	skip '... in bounded memory' 'no /usr/bin/time'
fi
rm "$tmp/huge.conf"

# One network syntax: mf-quota refuses host bits as mf-lists does.
printf 'quota.rule r key=client limit=10/1m\nquota.exempt-net 10.0.0.1/8\n' >"$tmp/q.conf"
check_refused 'quota.exempt-net with host bits is refused with file:line' 'q\.conf:2: quota\.exempt-net: "10\.0\.0\.1/8" has host bits set; the network is 10\.0\.0\.0/8' "mf-quota -c $tmp/q.conf check --client 192.0.2.1 </dev/null"
printf 'quota.rule r key=client limit=10/1m\nquota.local-net ::ffff:10.0.0.0/104\n' >"$tmp/q.conf"
check_refused 'so is an IPv4 network written as IPv6' 'q\.conf:2: quota\.local-net: .*IPv4 form' "mf-quota -c $tmp/q.conf check --client 192.0.2.1 </dev/null"
printf 'quota.rule r key=client limit=10/1m\nquota.exempt-net 10.0.0.0/8\nquota.exempt-net 192.0.2.7\n' >"$tmp/q.conf"
check_status 'a network and an address alone are taken' continue "mf-quota -c $tmp/q.conf check --client 192.0.2.1 </dev/null"

# Header From: comments, quoting, spaces and a NUL in or around the
# address do not hide it from a list; an address in a comment or a
# display name is not taken for it.
printf 'match: header-from\naction: block\nspam@evil.example\n' >"$tmp/from.list"
F="mf-lists --list $tmp/from.list check --output none --client 203.0.113.1"
n=0
for from in 'spam(comment)@evil.example' 'spam@(comment)evil.example' '"spam"@evil.example' 'Evil <spam (x) @ evil.example>' 'spam\000@evil.example' 'x <sp\000am@evil.example>' 'g: a@x.example, SPAM@EVIL.example;'; do
	n=$((n + 1))
	printf "From: $from\nSubject: x\n\nhi\n" >"$tmp/m$n"
	check_status "From: $from is blocked" reject "$F <$tmp/m$n"
done
printf 'From: (spam@evil.example) "spam@evil.example" <good@good.example>\nSubject: x\n\nhi\n' >"$tmp/ok"
check_status 'an address in a comment or a display name is not the address' continue "$F <$tmp/ok"
done_testing
