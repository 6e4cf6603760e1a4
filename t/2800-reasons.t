#!/bin/sh
# Why was this message refused: behind a real Postfix, each stage run in
# the decision record carries its Mf-Trace line and the last line of its
# stderr (the list file, line and entry; the quota rule and its count
# against the limit; a failed stage's last words), the SMTP reply stays
# generic, and the bridge logs one line per message, accepted mail too.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
need jq jq || { skip 'decision records read with jq' 'jq missing'; pf_wait_delivered 1
m=$(pf_mail 'Subject: one')
check_grep 'the trace header on accepted mail names the stages, and nothing more' "${m:-/dev/null}" '^X-Mf-Checked: mf-bridge on [^ ]+: lists at rcpt continue, quota at data continue, scanner at data continue$'
done_testing; exit 0; }
mkdir -p "$tmp/state" "$tmp/lists" "$tmp/log"; chmod 755 "$tmp"; chown games "$tmp/state"; chown nobody "$tmp/log"
cat >"$tmp/lists/40-senders.list" <<'L'
match: sender
action: block
reply: 550 5.7.1 Access denied

@spam.example     # the domain of a known spammer
L
chmod -R a+rX "$tmp/lists"
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
quota.rule per-sender key=sender limit=1/1m reply="451 4.7.1 Too much mail from you"
bridge.stage lists rcpt mf-lists check
bridge.stage quota data mf-quota check
bridge.stage scanner data input=message output=exit on-error=accept -- sh -c 'cat >/dev/null; echo "scanner: cannot reach 127.0.0.1:3310: connection refused" >&2; exit 75'
bridge.decision-log $tmp/log/decisions.log
bridge.trace-header X-Mf-Checked
CONF
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; pf_wait_delivered 1
m=$(pf_mail 'Subject: one')
check_grep 'the trace header on accepted mail names the stages, and nothing more' "${m:-/dev/null}" '^X-Mf-Checked: mf-bridge on [^ ]+: lists at rcpt continue, quota at data continue, scanner at data continue$'
done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; pf_wait_delivered 1
m=$(pf_mail 'Subject: one')
check_grep 'the trace header on accepted mail names the stages, and nothing more' "${m:-/dev/null}" '^X-Mf-Checked: mf-bridge on [^ ]+: lists at rcpt continue, quota at data continue, scanner at data continue$'
done_testing; exit 1; }
send() {
	name=$1 from=$2; shift 2
	swaks --server 127.0.0.1:$pf_port --from $from --to alice@example.test "$@" >"$tmp/$name" 2>&1
}
send spam bob@spam.example --header "Subject: spam"
check_grep 'a listed sender: the list'"'"'s generic reply' "$tmp/spam" '<\*\* 550 5\.7\.1 Access denied'
check_nogrep '... which names no list' "$tmp/spam" '40-senders|spam\.example\)'
send one busy@example.org --header "Subject: one"
send two busy@example.org --header "Subject: two"
check_grep 'past the quota: the rule'"'"'s reply' "$tmp/two" '<\*\* 451 4\.7\.1 Too much mail from you'
sleep 0.5
rec=$tmp/log/decisions.log
# stage REC-SELECTOR STAGE FIELD: the field of that stage's run.
field() { jq -r "select($1) | .stages[] | select(.name == \"$2\") | .$3" "$rec" | head -1; }
run "echo '$(field '.action == "reject"' lists trace)'"
check_grep 'the list stage'"'"'s record: its trace names the list and what matched' "$tmp/out" '^mf-lists reject list=40-senders sender=bob@spam\.example [0-9.]+ms$'
run "echo '$(field '.action == "reject"' lists stderr)'"
check_grep '... and its reason the file, line and entry' "$tmp/out" "40-senders\\.list:5: @spam\\.example\\)$"
run "echo '$(field '.action == "tempfail"' quota trace)'"
check_grep 'the quota stage'"'"'s record: its trace names the rule' "$tmp/out" '^mf-quota tempfail rule=per-sender '
run "echo '$(field '.action == "tempfail"' quota stderr)'"
check_grep '... and its reason the count against the limit' "$tmp/out" 'rule per-sender key busy@example\.org: 2 > 1/1m'
run "echo '$(field '.action == "accept"' scanner error)|$(field '.action == "accept"' scanner stderr)'"
check_grep 'a failed stage: its error and the end of its stderr' "$tmp/out" '^exit 75\|scanner: cannot reach 127\.0\.0\.1:3310: connection refused$'
check_grep 'the bridge logs the accepted message' "$tmp/bridge.log" 'info: [0-9A-F]+: data: accept from=<busy@example\.org> rcpts=1 client=127\.0\.0\.1 stage=scanner:continue\(failed: exit 75\)'
check_grep '... and the refused one, with the stage that decided' "$tmp/bridge.log" 'info: [0-9A-F]+: data: tempfail "451 4\.7\.1 Too much mail from you" .* stage=quota:tempfail'
check_grep '... and the stage'"'"'s reason' "$tmp/bridge.log" 'stage quota at data: tempfail .*; mf-quota: info: tempfail: rule per-sender key busy@example\.org: 2 > 1/1m'
pf_wait_delivered 1
m=$(pf_mail 'Subject: one')
check_grep 'the trace header on accepted mail names the stages, and nothing more' "${m:-/dev/null}" '^X-Mf-Checked: mf-bridge on [^ ]+: lists at rcpt continue, quota at data continue, scanner at data continue$'
done_testing
