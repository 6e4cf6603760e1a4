#!/bin/sh
# mf-bridge policy as a real Postfix's check_policy_service: the chain's
# verdicts at RCPT become access(5) actions, one connection serves many
# requests, and a dead policy server leaves Postfix to its default.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix

mkdir -p "$tmp/lists" "$tmp/state"; chmod 755 "$tmp"
cat >"$tmp/lists/10-clients.list" <<'L'
match: client-addr
action: block
reply: 550 5.7.1 Your address is blocked here
127.0.0.2
L
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
quota.rule per-sender key=sender limit=2/1m count=recipients reply="451 4.7.1 Too much mail from you"
bridge.decision-log $tmp/decisions.log
bridge.stage lists connect,rcpt mf-lists check
bridge.stage quota rcpt -- sh -c 'case \$SENDER in busy@*) exec mf-quota check;; esac; exec cat'
bridge.stage tag rcpt output=headers -- sh -c 'cat >/dev/null; [ "\$RECIPIENT" = tag@example.test ] && echo "X-Policy-Tag: tagged by mf"; exit 0'
bridge.stage hold rcpt output=exit 0=quarantine 1=continue -- sh -c 'cat >/dev/null; [ "\$SENDER" = hold@example.org ]'
CONF
chown -R games "$tmp/state" "$tmp/lists"
touch "$tmp/decisions.log"; chown nobody "$tmp/decisions.log"

: >"$tmp/policy.log"
mf-bridge --config "$tmp/mf.conf" --user nobody --stage-user games -v policy --policy-listen inet:127.0.0.1:0 2>>"$tmp/policy.log" &
policy_pid=$!
i=0
until grep -q 'listening on' "$tmp/policy.log"; do
	i=$((i + 1)); [ $i -gt 100 ] && break
	sleep 0.05
done
policy_addr=$(sed -n 's/.*listening on tcp:\([0-9.:]*\) .*/\1/p' "$tmp/policy.log" | tail -1)
if [ -n "$policy_addr" ]; then ok "mf-bridge policy listens on $policy_addr"; else not_ok 'mf-bridge policy listens' "$(cat "$tmp/policy.log")"; done_testing; exit 1; fi

pf_extra="smtpd_recipient_restrictions = check_policy_service inet:$policy_addr
smtpd_policy_service_default_action = 451 4.3.5 Server configuration problem"
pf_start "" || { not_ok 'postfix starts'; done_testing; exit 1; }
at_exit 'kill $policy_pid 2>/dev/null'

send() {
	name=$1; shift
	swaks --server 127.0.0.1:$pf_port --helo client.example.org "$@" >"$tmp/$name" 2>&1
}
taken() { check_grep "$1" "$tmp/$2" '<- +250 2\.0\.0 Ok: queued'; }

send plain --from a@example.org --to alice@example.test --header 'Subject: plain'
taken 'allowed mail is taken' plain
pf_wait_delivered 1
check_out '... and delivered' 1 "ls $tmp/pf/mail/inbox/new | wc -l"

send blocked --from a@example.org --to alice@example.test --local-interface 127.0.0.2 --header 'Subject: blocked'
check_grep 'a blocked client is refused at RCPT with the stage text' "$tmp/blocked" '<\*\* 554 5\.7\.1 .*Your address is blocked here'
check_grep '... at RCPT' "$tmp/blocked" 'RCPT TO:<alice@example.test>'

send q1 --from busy@example.org --to alice@example.test --header 'Subject: q1'
send q2 --from busy@example.org --to alice@example.test --header 'Subject: q2'
send q3 --from busy@example.org --to alice@example.test --header 'Subject: q3'
taken 'the quota lets the first messages of a sender through' q2
check_grep 'past the sender quota: a 4xx with the rule text' "$tmp/q3" '<\*\* 45[0-9] 4\.7\.1 .*Too much mail from you'

send tag --from a@example.org --to tag@example.test --header 'Subject: tagme'
taken 'a stage that adds a header: taken' tag
pf_wait_delivered 4
m=$(pf_mail 'Subject: tagme')
check_grep '... and the field is prepended (PREPEND)' "${m:-/dev/null}" '^X-Policy-Tag: tagged by mf$'

send hold --from hold@example.org --to alice@example.test --header 'Subject: holdme'
taken 'a quarantine verdict: taken' hold
sleep 1
pf_queue >"$tmp/queue" 2>&1
check_grep '... and held in the queue (HOLD)' "$tmp/queue" '^[0-9A-F]+!.*hold@example\.org'

reqs=$(grep -c 'policy: .* request [0-9]* (' "$tmp/policy.log")
conns=$(grep -c 'policy: connection from' "$tmp/policy.log")
if [ "$conns" -ge 1 ] && [ "$reqs" -gt "$conns" ]; then ok "one policy connection serves many requests ($reqs requests over $conns connections)"
else not_ok 'one policy connection serves many requests' "requests $reqs, connections $conns"; fi
check_grep 'a refusal leaves a decision record' "$tmp/decisions.log" '"phase":"rcpt".*"action":"reject".*Your address is blocked here'
check_grep 'a tempfail leaves a decision record' "$tmp/decisions.log" '"phase":"rcpt".*"action":"tempfail"'
rec=$(grep -c '"phase":"rcpt"' "$tmp/decisions.log")
if [ "$rec" -ge "$reqs" ]; then ok "every request leaves a decision record, DUNNO too ($rec records, $reqs requests)"
else not_ok 'every request leaves a decision record' "$rec rcpt records for $reqs requests"; fi

kill $policy_pid; wait $policy_pid 2>/dev/null
send dead --from a@example.org --to alice@example.test --header 'Subject: no policy server'
check_grep 'a killed policy server: Postfix applies its default action' "$tmp/dead" '<\*\* 451 4\.3\.5 .*Server configuration problem'
done_testing
