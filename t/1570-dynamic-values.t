#!/bin/sh
# What mf-quota's block action puts on a dynamic list is the value it
# took from the message, typed: a sender that reads like a list entry
# (MAIL FROM:<0.0.0.0/0>, <::/0>, <@gmail.com>, <.gmail.com>) blocks that
# sender alone, and one that reads like no entry ("a b"@x, a@[192.0.2.1])
# is blocked too.
. "$(dirname "$0")/lib.sh"

conf=$tmp/mf.conf
cat >"$conf" <<'C'
quota.rule per-sender key=sender limit=1/1h action=block:block for=6h
C
mkdir "$tmp/lists"
Q="mf-quota -c $conf check --input stream --output none"
C="mf-lists --dir $tmp/lists check --input stream --output none"
# envelope QUEUEID CLIENT SENDER: a data-stage stream without a message.
envelope() {
	printf 'Mf-Stream: 1\nMf-Stage: data\nMf-Queue-Id: %s\nMf-Client-Addr: %s\nMf-Mail-From: <%s>\nMf-Rcpt-To: <r@example.com>\n\n' "$1" "$2" "$3"
}
n=0
for from in '0.0.0.0/0' '::/0' '@gmail.com' '.gmail.com' '"a b"@example.org' 'a@[192.0.2.1]'; do
	n=$((n + 1))
	envelope "A$n" 198.51.100.9 "$from" >"$tmp/in1"
	envelope "B$n" 198.51.100.9 "$from" >"$tmp/in2"
	check_status "<$from>: the first message passes" continue "$Q <$tmp/in1"
	check_status "<$from>: the second is over the limit" reject "$Q <$tmp/in2"
	check_grep "<$from>: ... and goes on the dynamic list as a sender" "$tmp/err" "sender .* added to dynamic list block"
	envelope "C$n" 192.0.2.1 alice@example.org >"$tmp/other"
	check_status "<$from>: another client with another sender still passes mf-lists" continue "$C <$tmp/other"
	envelope "D$n" 2001:db8::1 bob@gmail.com >"$tmp/other"
	check_status "<$from>: ... and so does one at gmail.com over IPv6" continue "$C <$tmp/other"
	envelope "E$n" 203.0.113.1 carol@mail.gmail.com >"$tmp/other"
	check_status "<$from>: ... and one below gmail.com" continue "$C <$tmp/other"
	envelope "F$n" 203.0.113.2 "$from" >"$tmp/self"
	check_status "<$from>: the sender itself is refused by mf-lists" reject "$C <$tmp/self"
done
run "mf-lists show block"
check_grep 'show prints the values with their kind' "$tmp/out" '^block	sender 0\.0\.0\.0/0	expires '
check_grep '... a sender no pattern could be' "$tmp/out" '^block	sender "a b"@example\.org	expires '
check_out 'del takes a value as show prints it' 'sender 0.0.0.0/0 deleted from block' "mf-lists del block 'sender 0.0.0.0/0'"
envelope G 203.0.113.3 0.0.0.0/0 >"$tmp/self"
check_status '... and the sender passes again' continue "$C <$tmp/self"
check_refused 'an administrator still cannot add a network with host bits' 'host bits' "mf-lists add block 192.0.2.1/24"
check_out '... and adds patterns as before' '@spam.example added to block, expires in 24h' "mf-lists add block @spam.example 2>&1 | sed 's/expires .*/expires in 24h/'"
envelope H 203.0.113.4 x@spam.example >"$tmp/self"
check_status '... which match as patterns' reject "$C <$tmp/self"
check_out 'an administrator adds a value as show prints it' 'sender "c d"@example.org added to block, expires in 24h' "mf-lists add block 'sender \"c d\"@example.org' 2>&1 | sed 's/expires .*/expires in 24h/'"
envelope I 203.0.113.5 '"c d"@example.org' >"$tmp/self"
check_status '... which blocks that sender' reject "$C <$tmp/self"
done_testing
