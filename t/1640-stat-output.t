# mf-stat's outputs: text in 80 columns, JSON, CSV, a self-contained HTML
# page; the same input gives the same bytes.
. "$(dirname "$0")/lib.sh"
d=$top/cmd/mf-stat/testdata
S="mf-stat --now 2026-11-23T12:00:00Z --tz UTC"
all="$d/postfix-maillog.gz $d/sendmail.log $d/qmail.log $d/mf-records.jsonl"

run "$S $all"
check_grep 'text: grand totals first' "$tmp/out" '^Grand totals$'
check_grep 'text: refusals by restriction' "$tmp/out" '^Refusals by restriction$'
check_grep 'text: delay percentiles' "$tmp/out" '^Delivery delay percentiles'
check_grep 'text: mf verdicts per stage' "$tmp/out" '^mf verdicts per stage$'
check_nogrep 'text: nothing wider than 80 columns' "$tmp/out" '^.{81}'
check "text: deterministic" "$S $all >$tmp/a && $S $all >$tmp/b && cmp $tmp/a $tmp/b"

run "$S --json $all"
check_grep 'json: totals' "$tmp/out" '"received": [0-9]+'
check_grep 'json: tables by name' "$tmp/out" '"name": "recipient-domains"'
check_grep 'json: line counts' "$tmp/out" '"unparsed": [0-9]+'
if command -v python3 >/dev/null; then
	cp "$tmp/out" "$tmp/json"
	check 'json: parses' "python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"totals\"][\"decisions\"] == 5' <$tmp/json"
else skip 'json: parses' 'no python3 (the Go unit tests decode the JSON too)'
fi

run "$S --csv recipient-domains $all"
check_grep 'csv: header' "$tmp/out" '^delivered,bytes,deferrals,avg_delay,max_delay,domain$'
check_grep 'csv: rows' "$tmp/out" '^[0-9]+,[0-9]+,[0-9]+,[0-9.]+,[0-9.]+,[^,]+$'

run "$S --html $all"
check_grep 'html: a page' "$tmp/out" '^<!DOCTYPE html>'
check_grep 'html: inline SVG charts' "$tmp/out" '<svg xmlns='
check_nogrep 'html: no script' "$tmp/out" '<script'
check_nogrep 'html: no external assets' "$tmp/out" '(src|href)='
check 'html: deterministic' "$S --html $all >$tmp/a && $S --html $all >$tmp/b && cmp $tmp/a $tmp/b"
check 'the example page in doc/ is what this version makes' "$S --html $d/postfix-maillog.gz $d/sendmail.log $d/qmail.log $d/mf-records.jsonl | cmp - $top/doc/mf-stat-example.html"

check_out 'settings from mf.conf, section stat' '3' "printf 'stat.top 3\n' >$tmp/c.conf; $S --config $tmp/c.conf --csv senders $all | tail -n +2 | wc -l"
done_testing
