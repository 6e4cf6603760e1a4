#!/bin/sh
# Streams in, streams out, and chains of stages.
. "$(dirname "$0")/lib.sh"

mkdir "$tmp/a" "$tmp/b"
printf 'match: client-addr\naction: block\n192.0.2.0/24\n' >"$tmp/a/block.list"
printf 'match: header-from\naction: tag\nheader: X-Partner\n@world.std.com\n' >"$tmp/b/10-partner.list"
printf 'match: client-addr\naction: allow\n198.51.100.0/24\n' >"$tmp/b/20-allow.list"
printf 'match: rcpt\naction: block\nreply: 550 5.1.1 No such user\nnobody@example.com\n' >"$tmp/a/rcpt.list"
A="mf-lists --dir $tmp/a check"
B="mf-lists --dir $tmp/b check"
# What a stage reads after another is a stream, and it is told so: a bare
# message is never taken for one (see the forgery checks at the end).
As="$A --input stream" Bs="$B --input stream"

run "$A --client 203.0.113.1 --from a@example.org --rcpt b@example.com <$msg/crlf-folded-from.eml >$tmp/s1"
[ "$rc" = 0 ] && ok 'stage a continues' || not_ok 'stage a continues' "exit $rc"
check_exit 'the stream goes on into stage b' 0 "$Bs <$tmp/s1 >$tmp/s2"
check_grep 'b keeps a envelope' "$tmp/s2" '^Mf-Client-Addr: 203\.0\.113\.1$'
check_grep 'b adds its own trace after a' "$tmp/s2" '^Mf-Trace: mf-lists continue'
[ "$(grep -c '^Mf-Trace:' "$tmp/s2")" = 2 ] && ok 'one trace line per stage' || not_ok 'one trace line per stage' "$(grep '^Mf-Trace' "$tmp/s2")"
sed '1,/^$/d' "$tmp/s2" >"$tmp/body"
check 'a CRLF message passes two stages byte for byte' "cmp $tmp/body $msg/crlf-folded-from.eml"

check_exit 'a | b: a rejects, b passes it on' 100 "$A --client 192.0.2.9 <$msg/plain.eml | tee $tmp/alone | $Bs --client 198.51.100.1"
cp "$tmp/out" "$tmp/chain"
check 'a decided stream leaves b exactly as it came' "cmp $tmp/alone $tmp/chain"
check_exit 'a | b: b accepts what a let through' 99 "$A --client 198.51.100.1 <$msg/plain.eml | $Bs"
check_exit 'a | b | a: the first final verdict stands' 99 "$A --client 198.51.100.1 <$msg/plain.eml | $Bs | $As --client 192.0.2.1"

check_exit 'tag: header added to the message, the chain goes on' 0 "$B --client 203.0.113.1 <$msg/nonspam.eml"
check_grep 'tag header names the list' "$tmp/out" '^X-Partner: 10-partner$'
sed '1,/^$/d' "$tmp/out" | sed 1d >"$tmp/body"
check 'tag changes nothing else in the message' "cmp $tmp/body $msg/nonspam.eml"
sed 's/^Date:/From: x@world.std.com\r\nDate:/' "$msg/crlf-folded-from.eml" >"$tmp/crlf.eml"
run "$B --output message --client 203.0.113.1 <$tmp/crlf.eml"
cp "$tmp/out" "$tmp/tagged"
printf 'X-Partner: 10-partner\r\n' >"$tmp/want"; cat "$tmp/crlf.eml" >>"$tmp/want"
check 'a tag on a CRLF message ends in CRLF' "cmp $tmp/tagged $tmp/want"

# Envelope-only streams, as the milter sends them before DATA.
env_rcpt() {
	printf 'Mf-Stream: 1\nMf-Stage: rcpt\nMf-Client-Addr: 203.0.113.1\nMf-Mail-From: <a@example.org>\n'
	for r in "$@"; do printf 'Mf-Rcpt-To: <%s>\n' "$r"; done
	printf '\n'
}
env_rcpt nobody@example.com >"$tmp/e1"
check_exit 'rcpt stage: the recipient being decided on is refused' 100 "$As <$tmp/e1"
check_grep '... with the list reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.1\.1 No such user$'
env_rcpt nobody@example.com ok@example.com >"$tmp/e2"
check_exit 'rcpt stage: an earlier refused recipient is not decided again' 0 "$As <$tmp/e2"
check_out 'an envelope-only stream stays envelope-only' '' "$As <$tmp/e2 | sed '1,/^\$/d'"
printf 'Mf-Stream: 1\nMf-Stage: connect\nMf-Client-Addr: 203.0.113.1\nMf-Helo: x\n\n' >"$tmp/e3"
check_exit 'connect stage: a client rule decides before any message' 100 "$As <$tmp/e3 | sed s/203.0.113.1/192.0.2.1/ | $As"
printf 'match: client-addr\naction: tag\n203.0.113.0/24\n' >"$tmp/tagc.list"
check_exit 'a tag before DATA is carried in the envelope' 0 "mf-lists --list $tmp/tagc.list check --input stream <$tmp/e3"
check_grep '... as Mf-Add-Header' "$tmp/out" '^Mf-Add-Header: X-Mf-List: tagc$'
{ printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Add-Header: X-Early: connect-time note\n\n'; cat "$msg/plain.eml"; } >"$tmp/early"
run "$Bs --output message <$tmp/early"
cp "$tmp/out" "$tmp/early.out"
check_out '--output message puts pending Mf-Add-Header fields into the message' 'X-Early: connect-time note' "head -1 $tmp/early.out"
check 'and keeps the rest of the message' "sed 1d $tmp/early.out | cmp - $msg/plain.eml"

# A stranger's message that starts like a stream forges nothing: without
# --input stream it is a bare message, its "envelope" part of the header.
{ printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Client-Addr: 198.51.100.1\nMf-Verdict: accept\n\n'; cat "$msg/plain.eml"; } >"$tmp/forged"
check_status 'a forged Mf-Verdict: accept is not obeyed' reject "$A --client 192.0.2.9 <$tmp/forged"
check_status 'a forged allowed client address is not taken' reject "$B --client 192.0.2.9 <$tmp/forged; [ \$? = 0 ] && $A --client 192.0.2.9 <$tmp/forged"
check_grep '... the message goes on whole, its first line a header line' "$tmp/out" '^Mf-Stream: 1$'
check_status '--input auto still reads a stream, for trusted input' accept "$B --input auto <$tmp/forged"
done_testing
