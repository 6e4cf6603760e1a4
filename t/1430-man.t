#!/bin/sh
# Every manual page as a reader sees it: clean under mandoc -Tlint, groff
# -ww and man -l, its quotes paired and no optional part that swallowed
# what follows (t/quotes.awk), on the rendered text of mandoc and groff;
# every page installed and named in the SEE ALSO of mf(7) and mf-config(5).
. "$(dirname "$0")/lib.sh"
need mandoc mandoc || { skip 'manual pages' 'mandoc missing'; done_testing; exit 0; }
need groff groff || { skip 'manual pages' 'groff missing'; done_testing; exit 0; }
need man man-db || { skip 'manual pages' 'man missing'; done_testing; exit 0; }
# quotes DESC FILE MODE: t/quotes.awk finds nothing wrong in FILE.
quotes() {
	if awk -v single="$3" -f "$top/t/quotes.awk" "$2" >"$tmp/q" 2>&1; then ok "$1"
	else not_ok "$1" "$(cat "$tmp/q")"; fi
}
export MANWIDTH=80 LC_ALL=C.UTF-8
for f in "$top"/man/*.[1-8]; do
	page=${f##*/}
	check_out "$page: mandoc -Tlint -Wwarning is clean" '' "mandoc -Tlint -Wwarning $f 2>&1"
	check_out "$page: groff -man -ww is clean" '' "groff -man -Tutf8 -ww -z $f 2>&1"
	run "man -l $f"
	if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ]; then ok "$page: man -l renders it without a warning"; else not_ok "$page: man -l renders it without a warning" "$(cat "$tmp/err")"; fi
	col -b <"$tmp/out" >"$tmp/groff.txt"
	mandoc -Tutf8 "$f" | col -b >"$tmp/mandoc.txt"
	quotes "$page: quotes pair up as mandoc renders it" "$tmp/mandoc.txt" 1
	quotes "$page: quotes pair up as groff renders it" "$tmp/groff.txt" 2
	grep -q "man/$page" "$top/Makefile" && ok "$page: in the Makefile's MAN" || not_ok "$page: in the Makefile's MAN"
	name=${page%.*} sec=${page##*.}
	for in in mf.7 mf-config.5; do
		[ "$page" = "$in" ] && continue
		sed -n '/^\.Sh SEE ALSO/,/^\.Sh/p' "$top/man/$in" | grep -q "^\.Xr $name $sec" && ok "$in names $page in SEE ALSO" || not_ok "$in names $page in SEE ALSO"
	done
done
# The checker itself finds what it is for.
printf 'a (\342\200\23030s, \342\200\2301m\342\200\231\342\200\231)\n\nb user[:group, next mode]\n\nc \342\200\234open\n' >"$tmp/bad.txt"
run "awk -v single=1 -f $top/t/quotes.awk $tmp/bad.txt"
check_grep 't/quotes.awk finds nested quotes' "$tmp/out" 'nested single quotes'
check_grep '... an optional part that swallowed the next item' "$tmp/out" 'glued to a word holds a space'
check_grep '... and a quote left open' "$tmp/out" 'a quote left open'
done_testing
