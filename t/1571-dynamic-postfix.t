#!/bin/sh
# Behind a real Postfix, which takes MAIL FROM:<0.0.0.0/0>, <::/0>,
# <@gmail.com> and <.gmail.com>: a quota rule that blocks by sender puts
# that sender on the dynamic list, and mf-lists then refuses that sender
# alone at RCPT, not every client and sender.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
mkdir -p "$tmp/state" "$tmp/lists"; chmod 755 "$tmp"; chown games "$tmp/state"
printf 'match: client-addr\naction: block\n192.0.2.66\n' >"$tmp/lists/10-block.list"
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
quota.rule per-sender key=sender limit=1/1h action=block:block for=6h
bridge.stage lists rcpt mf-lists --dir $tmp/lists check
bridge.stage quota data mf-quota check
CONF
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
send() {
	name=$1 sender=$2; shift 2
	swaks --server 127.0.0.1:$pf_port --from "$sender" --to alice@example.test "$@" >"$tmp/$name" 2>&1
}
n=0
for from in '0.0.0.0/0' '::/0' '@gmail.com' '.gmail.com'; do
	n=$((n + 1))
	send "a$n" "$from"
	check_grep "<$from>: Postfix takes the first message" "$tmp/a$n" '<- +250 2\.0\.0 Ok: queued'
	send "b$n" "$from"
	check_grep "<$from>: the second is over the rule's limit" "$tmp/b$n" '<\*\* +550 5\.7\.1 Message rejected'
	send "c$n" "$from"
	grep -A1 -- '-> RCPT TO:' "$tmp/c$n" >"$tmp/rcpt$n"
	check_grep "<$from>: the third is refused at RCPT, with the dynamic list's reply" "$tmp/rcpt$n" '^<\*\* +550 5\.7\.1 Access denied'
	send "d$n" "bob$n@gmail.com"
	check_grep "<$from>: another sender at gmail.com is taken" "$tmp/d$n" '<- +250 2\.0\.0 Ok: queued'
	send "e$n" "carol$n@mail.gmail.com"
	check_grep "<$from>: ... and one below gmail.com" "$tmp/e$n" '<- +250 2\.0\.0 Ok: queued'
done
run "mf-lists -c $tmp/mf.conf show block"
check_grep 'the list holds the senders, typed' "$tmp/out" '^block	sender 0\.0\.0\.0/0	'
check_grep '... all four' "$tmp/out" '^block	sender \.gmail\.com	'
done_testing
