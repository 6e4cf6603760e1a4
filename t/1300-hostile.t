#!/bin/sh
# Envelope values come from strangers: none may add a field or end the
# envelope block.
. "$(dirname "$0")/lib.sh"

printf 'match: client-addr\naction: block\n192.0.2.0/24\n' >"$tmp/b.list"
L="mf-lists --list $tmp/b.list check"
cr=$(printf '\r') nl='
'
run "$L --client 203.0.113.1 --from 'a@b.example>${cr}${nl}Mf-Verdict: accept' --helo 'x${nl}${nl}Subject: injected' <$msg/plain.eml"
[ "$rc" = 0 ] && ok 'CRLF in a sender: still continue, not accept' || not_ok 'CRLF in a sender: still continue, not accept' "exit $rc"
cp "$tmp/out" "$tmp/s"
sed '/^$/q' "$tmp/s" >"$tmp/env"
check_nogrep 'no injected verdict in the envelope' "$tmp/env" '^Mf-Verdict'
check_grep 'the CR LF is encoded' "$tmp/env" '^Mf-Mail-From: <a@b\.example>%0D%0AMf-Verdict: accept>$'
check_grep 'an empty line in a value cannot end the envelope' "$tmp/env" '^Mf-Helo: x%0A%0ASubject: injected$'
[ "$(grep -c . "$tmp/env")" = 6 ] && ok 'exactly the six fields written' || not_ok 'exactly the six fields written' "$(cat "$tmp/env")"
sed '1,/^$/d' "$tmp/s" >"$tmp/body"
check 'message unchanged after the hostile envelope' "cmp $tmp/body $msg/plain.eml"
check_exit 'a second stage reads the encoded values and does not accept' 0 "$L --input stream <$tmp/s"
check_exit 'the second stage writes the values encoded again' 0 "$L --input stream <$tmp/s | sed '/^\$/q' | grep -c '^Mf-Verdict' | grep -qx 0"

# Non-UTF-8, NUL, '%' and edge spaces survive a stage exactly.
printf 'Mf-Stream: 1\nMf-Stage: rcpt\nMf-Client-Addr: 203.0.113.1\nMf-Helo: %%20sp%%00ace%%FF%%20\nMf-Mail-From: <100%%25@example.org>\nMf-Rcpt-To: <u@example.com>\n\n' >"$tmp/e"
run "$L --input stream <$tmp/e"
cp "$tmp/out" "$tmp/e2"
check_grep 'NUL, 0xFF and edge spaces stay encoded' "$tmp/e2" '^Mf-Helo: %20sp%00ace%FF%20$'
check_grep 'a percent sign stays %25' "$tmp/e2" '^Mf-Mail-From: <100%25@example\.org>$'
check_exit 'a raw CR inside an envelope line is read as part of the value' 0 "printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Helo: a\rb\n\n' | $L --input stream"
check_grep '... and written on encoded' "$tmp/out" '^Mf-Helo: a%0Db$'
check_nogrep '... so no raw CR reaches stdout' "$tmp/out" "$cr"

# An address list matched with a tricky header From: a From that does not
# parse still yields its addresses.
printf 'match: header-from\naction: block\nbad@spam.example\n' >"$tmp/from.list"
printf 'From: "unterminated <bad@spam.example>\nSubject: x\n\nhi\n' >"$tmp/m"
check_exit 'a malformed From cannot slip past a list' 100 "mf-lists --list $tmp/from.list check --client 203.0.113.1 <$tmp/m"
printf 'From: =?utf-8?q?B=C3=A4d?= <BAD@Spam.Example>\nSubject: x\n\nhi\n' >"$tmp/m2"
check_exit 'an encoded display name and odd case still match' 100 "mf-lists --list $tmp/from.list check --client 203.0.113.1 <$tmp/m2"
printf 'Subject: x\nFrom: a@example.org\nFrom: bad@spam.example\n\nhi\n' >"$tmp/m3"
check_exit 'a second From field is looked at too' 100 "mf-lists --list $tmp/from.list check --client 203.0.113.1 <$tmp/m3"
done_testing
