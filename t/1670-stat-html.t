# mf-stat --html in a real headless Chromium: the page loads from disk
# with no console message, every section is there, the screenshot is of
# a sane size and not blank; the page has no script and no external
# asset; with --offsets history the key figures show the change.
. "$(dirname "$0")/lib.sh"
d=$top/cmd/mf-stat/testdata
S="mf-stat --now 2026-11-23T12:00:00Z --tz UTC"
logs="$d/postfix-maillog.gz $d/sendmail.log $d/qmail.log $d/mf-records.jsonl"

run "$S --html $logs"
cp "$tmp/out" "$tmp/page.html"
check_nogrep 'no script' "$tmp/page.html" '<script'
check_nogrep 'no external asset' "$tmp/page.html" '(src|href)="?(https?:)?//'
check_nogrep 'no raw JSON key names among the labels' "$tmp/page.html" '>(bytes_received|rejected_percent|sending_hosts|avg_delay)<'
check_grep 'axis text is 12 px, drawn at the size shown' "$tmp/page.html" 'svg text\{font:12px'

if need chromium chromium; then
	chrome() { timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
		--disable-sync --no-first-run --user-data-dir="$(mktemp -d "$tmp/profile.XXXXXX")" --enable-logging=stderr --v=0 "$@"; }
	chrome --window-size=1280,1400 --screenshot="$tmp/shot.png" "file://$tmp/page.html" >"$tmp/c.out" 2>"$tmp/c.err"
	if [ -s "$tmp/shot.png" ]; then
		# PNG: width and height are the big-endian words at bytes 16 and 20.
		wh=$(od -An -tu1 -j16 -N8 "$tmp/shot.png" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8 }')
		size=$(wc -c <"$tmp/shot.png")
		[ "$wh" = "1280 1400" ] && [ "$size" -gt 40000 ] && ok "screenshot 1280x1400, $size bytes" ||
			not_ok 'screenshot of a sane size' "dimensions $wh, $size bytes"
	else
		not_ok 'chromium made a screenshot' "$(tail -5 "$tmp/c.err")"
	fi
	check_nogrep 'no console message (errors, refused loads)' "$tmp/c.err" ':CONSOLE[:(]|Uncaught|Refused to|Failed to load'
	chrome --dump-dom "file://$tmp/page.html" >"$tmp/dom.html" 2>/dev/null
	for id in key-figures hours days rejects verdicts delays problems domains people failures; do
		check_grep "section $id rendered" "$tmp/dom.html" "id=\"$id\""
	done
	check_grep 'the problems section lists the fatal of postfix-script' "$tmp/dom.html" 'postfix/postfix-script'
else
	skip 'page in headless chromium' 'chromium not installed'
fi

# Cron mode keeps the last run's totals: the next page shows the change.
L=$tmp/mail.log
gzip -dc "$d/postfix-maillog.gz" | head -n 7000 >"$L"
run "$S --offsets $tmp/off --html $L"
check_nogrep 'first run: no change shown' "$tmp/out" 'on the previous run'
gzip -dc "$d/postfix-maillog.gz" | tail -n +7001 >>"$L"
run "$S --offsets $tmp/off --html $L"
check_grep 'second run: key figures with the change on the previous run' "$tmp/out" '(\+|-)[0-9]+% on the previous run|new \(was 0\)|unchanged'
check_grep '... and the previous period named' "$tmp/out" 'compared with the previous run, 2026-'
done_testing
