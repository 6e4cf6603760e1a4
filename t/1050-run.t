#!/bin/sh
# The README's first command, make run: the example chain on the example
# messages, one verdict each, then the milter it serves.
. "$(dirname "$0")/lib.sh"

if ss -ltnH 'sport = :7357' | grep -q .; then
	skip 'make run' 'something already listens on 127.0.0.1:7357'
	done_testing; exit 0
fi
timeout 20 sh "$top/etc/run" >"$tmp/run.out" 2>&1 &
pid=$!
i=0; until grep -q 'Ctrl-C stops' "$tmp/run.out" || [ $i -gt 150 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
check_out 'each example message gets its verdict' '0
100
111
100
0' "sed -n 's/^exit status //p' $tmp/run.out"
check_grep 'the partner list tags' "$tmp/run.out" '^  add header X-Mf-List: 50-tag-partners$'
check_nogrep 'no stage failed' "$tmp/run.out" 'failed:'
check 'the milter listens on 127.0.0.1:7357' "ss -ltnH 'sport = :7357' | grep -q ."
kill $pid 2>/dev/null; pkill -f "mf-run.*mf-bridge.*milter --listen inet:127.0.0.1:7357" 2>/dev/null
wait $pid 2>/dev/null
done_testing
