#!/bin/sh
# mf-quota in mf-bridge's chain, behind a real Postfix: a sender over its
# limit gets the rule's 4xx at the end of data, and the concurrency slot
# each message takes is given back by a stage that runs always, also
# after another stage refused the message.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
mkdir -p "$tmp/state"; chmod 755 "$tmp"; chown games "$tmp/state"
conf() {
	cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
quota.rule per-sender key=sender limit=2/1m reply="451 4.7.1 Too much mail from you"
quota.concurrency 1
bridge.stage quota data mf-quota check
bridge.stage refuse data input=message output=exit 0=reject 1=continue -- grep -q "^Subject: REJECTME"
CONF
}
conf
echo 'bridge.stage release data always=yes output=exit -- mf-quota release' >>"$tmp/mf.conf"
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
send() {
	name=$1 from=$2; shift 2
	swaks --server 127.0.0.1:$pf_port --from $from --to alice@example.test "$@" >"$tmp/$name" 2>&1
}
taken() { check_grep "$1" "$tmp/$2" '<- +250 2\.0\.0 Ok: queued'; }

send one busy@example.org --header "Subject: one"
taken 'one message at a time: the first is taken' one
send two busy@example.org --header "Subject: two"
taken '... and so is the next: its slot was given back' two
send three busy@example.org --header "Subject: three"
check_grep 'past the sender limit: the rule'"'"'s own 4xx' "$tmp/three" '<\*\* 451 4\.7\.1 Too much mail from you'
send refused other@example.org --header "Subject: REJECTME"
check_grep 'a later stage refuses a message' "$tmp/refused" '<\*\* 550 5\.7\.1 Message rejected'
send after other@example.org --header "Subject: after"
taken '... whose slot the always stage gave back' after
pf_wait_delivered 3
check_out 'three delivered' 3 "ls $tmp/pf/mail/inbox/new | wc -l"
run "mf-quota --config $tmp/mf.conf show busy@example.org"
check_grep 'mf-quota show: the sender at its limit' "$tmp/out" '^per-sender +busy@example\.org +2/2 '

# Without the always stage the refused message's slot stays taken.
conf
kill -HUP $bridge_pid; sleep 0.5
send refused2 late@example.org --header "Subject: REJECTME"
send after2 late@example.org --header "Subject: after"
check_grep 'without it, the next message finds no free slot' "$tmp/after2" '<\*\* 451 4\.3\.2 System busy'
done_testing
