#!/bin/sh
# mf's own stages inside mf-bridge, through a real Postfix: the example
# chain (mf-lists at rcpt and data with etc/lists), mf-quota at rcpt,
# mf-accept's HELO and recipient checks at rcpt and mf-scan's rules at
# data, run once in-process and once with exec=yes (a process per stage), on
# the same mail: the SMTP replies, what is delivered and the decision
# records must be the same. In-process, a list edited between two
# messages takes effect on the second.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
# In-process stages are for a bridge whose stages run as itself.
bridge_alone=1
need_postfix
need jq jq || { skip 'in-process and exec agree' 'jq missing'; done_testing; exit 0; }

chmod 755 "$tmp"
mkdir -p "$tmp/lists"
# The example lists, but 10-local.list: it allows 127.0.0.0/8, which is
# where every test client comes from.
cp "$top"/etc/lists/*.list "$tmp/lists/"
rm "$tmp/lists/10-local.list"
chmod -R a+rwX "$tmp/lists"
cat >"$tmp/rules" <<'R'
reject     filename       *.exe  reply="550 5.7.1 No executables"
tag        header:Subject /viagra/i subject="[SPAM] "
R
chmod a+r "$tmp/rules"

# conf WAY EXEC: the chain, with exec=EXEC on mf's stages.
conf() {
	mkdir -p "$tmp/$1/state"
	touch "$tmp/$1/decisions.log"
	chown -R nobody "$tmp/$1"
	cat >"$tmp/$1/mf.conf" <<CONF
state-dir $tmp/$1/state
lists.dir $tmp/lists
quota.rule per-sender key=sender limit=2/1h count=recipients action=tempfail reply="451 4.7.1 Slow down"
bridge.stage lists rcpt,data exec=$2 mf-lists check
bridge.stage quota rcpt exec=$2 mf-quota check
accept.check helo-bare-ip
accept.check max-rcpts
accept.max-rcpts 2
bridge.stage accept rcpt exec=$2 mf-accept check
scan.rules $tmp/rules
bridge.stage scan data exec=$2 mf-scan check
bridge.stage tag data input=message output=headers -- echo "X-Chain: passed"
bridge.decision-log $tmp/$1/decisions.log
CONF
}

# send NAME ARGS...: swaks to the private Postfix; transcript in $tmp/$way/NAME.
send() {
	name=$1; shift
	swaks --server 127.0.0.1:$pf_port --helo client.example.org "$@" >"$tmp/$way/$name" 2>&1
}

# replies NAME: the server's answers to RCPT and the end of data.
replies() { sed -n 's/^<\*\* *\([0-9][0-9][0-9] [0-9.]*\).*/\1/p; s/^<- *\(250 2.0.0\) Ok: queued.*/\1/p' "$tmp/$way/$1" | tr '\n' ' '; }

for way in in-process exec; do
	case $way in in-process) x=no ;; *) x=yes ;; esac
	conf $way $x
	export MF_STATE_DIR=$tmp/$way/state # lib.sh's would beat the file's
	run "setpriv --reuid=nobody --regid=nogroup --clear-groups mf-bridge --config $tmp/$way/mf.conf test --client 203.0.113.5 --from a@example.com --rcpt b@example.com $msg/plain.eml"
	if [ $way = in-process ]; then
		check_grep "$way: mf-bridge test says mf-lists runs in-process" "$tmp/out" '^  stage lists: continue \(exit 0\) in-process$'
		check_grep "$way: ... and mf-quota too" "$tmp/out" '^  stage quota: continue \(exit 0\) in-process$'
		check_grep "$way: ... and mf-accept" "$tmp/out" '^  stage accept: continue \(exit 0\) in-process$'
		check_grep "$way: ... and mf-scan" "$tmp/out" '^  stage scan: continue \(exit 0[,)].* in-process$'
	else
		check_grep "$way: with exec=yes mf-bridge test shows a process" "$tmp/out" '^  stage lists: continue \(exit 0\)$'
	fi
	check_grep "$way: ... a foreign stage is always a process" "$tmp/out" '^  stage tag: continue \(exit 0, 1 header field\(s\)\)$'

	bridge_start "$tmp/$way/mf.conf" || { not_ok "$way: mf-bridge starts"; continue; }
	pf_start "$bridge_addr" || { not_ok "$way: postfix starts"; bridge_stop; continue; }
	send plain --from a@example.com --to b@example.test --header "Subject: plain"
	send tagged --from x@world.std.com --to b@example.test --header "Subject: tagged" --header "From: x@world.std.com"
	send tempblock --from owner@lists.example.org --to b@example.test --header "Subject: list mail"
	send blocked --from sender@example.net --to b@example.test --header "Subject: spam"
	send hdrfrom --from c@example.com --to b@example.test --header "Subject: forged" --header "From: bad@host.spam.example"
	send quota1 --from q@example.com --to b@example.test --header "Subject: q1"
	send quota2 --from q@example.com --to b@example.test --header "Subject: q2"
	send quota3 --from q@example.com --to b@example.test --header "Subject: q3"
	# A list edited between two messages: the second is refused.
	send before --from late@example.com --to b@example.test --header "Subject: before the edit"
	echo "late@example.com" >>"$tmp/lists/40-block-senders.list"
	send after --from late@example.com --to b@example.test --header "Subject: after the edit"
	sed -i '/^late@example.com$/d' "$tmp/lists/40-block-senders.list"
	send bareip --helo 127.0.0.1 --from h@example.com --to b@example.test --header "Subject: bare IP"
	send rcpts --from r@example.com --to b@example.test,c@example.test,d@example.test --header "Subject: three recipients"
	send exe --from e@example.com --to b@example.test --header "Subject: a program" --attach-type application/octet-stream --attach-name setup.exe --attach @/bin/true
	send viagra --from v@example.com --to b@example.test --header "Subject: cheap viagra"
	pf_wait_delivered 7
	sleep 1
	for n in plain tagged tempblock blocked hdrfrom quota1 quota2 quota3 before after bareip rcpts exe viagra; do
		echo "$n: $(replies $n)"
	done >"$tmp/$way.replies"
	for f in "$tmp"/pf/mail/inbox/new/*; do
		printf '%s %s %s\n' "$(sed -n 's/^Subject: //p' "$f")" "$(grep -c '^X-Chain: passed$' "$f")" "$(sed -n 's/^X-Mf-List: //p' "$f")"
	done | sort >"$tmp/$way.delivered"
	jq -c '{phase, mail_from, rcpts, action, reply, stages: [.stages[] | {name, phase, action, exit, reply, error}]}' "$tmp/$way/decisions.log" | sort >"$tmp/$way.records"
	pf_stop; bridge_stop
	rm -rf "$tmp/pf"
done

check_grep 'in-process: mail that passes is delivered' "$tmp/in-process.replies" '^plain: 250 2.0.0 $'
check_grep 'in-process: a tempblocked sender is tempfailed at RCPT' "$tmp/in-process.replies" '^tempblock: 451 4.7.1 '
check_grep 'in-process: a blocked sender is rejected at RCPT' "$tmp/in-process.replies" '^blocked: 550 5.7.1 '
check_grep 'in-process: a blocked header From is rejected at the end of data' "$tmp/in-process.replies" '^hdrfrom: 550 5.7.1 '
check_grep 'in-process: the third message of a sender over its quota of 2 recipients is tempfailed at RCPT' "$tmp/in-process.replies" '^quota3: 451 4.7.1 '
check_grep 'in-process: before the list edit the sender passes' "$tmp/in-process.replies" '^before: 250 2.0.0 $'
check_grep 'in-process: after the edit the list refuses it' "$tmp/in-process.replies" '^after: 550 5.7.1 '
check_grep 'in-process: the tag list puts its header on' "$tmp/in-process.delivered" '^tagged 1 50-tag-partners$'
check_grep 'in-process: mf-accept refuses a bare IP address as HELO at RCPT' "$tmp/in-process.replies" '^bareip: 5[0-9][0-9] 5\.'
check_grep 'in-process: mf-accept tempfails the third recipient of max-rcpts 2' "$tmp/in-process.replies" '^rcpts: 4[0-9][0-9] 4\.[0-9.]* 250 2.0.0 $'
check_grep 'in-process: mf-scan rejects the .exe attachment at the end of data' "$tmp/in-process.replies" '^exe: 550 5.7.1 $'
check_grep 'in-process: mf-scan puts the Subject prefix on' "$tmp/in-process.delivered" '^\[SPAM\] cheap viagra 1 '
if cmp -s "$tmp/in-process.replies" "$tmp/exec.replies"; then ok 'SMTP replies the same both ways'; else not_ok 'SMTP replies the same both ways' "$(diff "$tmp/in-process.replies" "$tmp/exec.replies")"; fi
if cmp -s "$tmp/in-process.delivered" "$tmp/exec.delivered" && [ -s "$tmp/exec.delivered" ]; then ok 'the same mail delivered, with the same fields, both ways'; else not_ok 'the same mail delivered both ways' "$(diff "$tmp/in-process.delivered" "$tmp/exec.delivered")"; fi
if cmp -s "$tmp/in-process.records" "$tmp/exec.records" && [ -s "$tmp/exec.records" ]; then ok 'the same decision records both ways'; else not_ok 'the same decision records both ways' "$(diff "$tmp/in-process.records" "$tmp/exec.records")"; fi
done_testing
