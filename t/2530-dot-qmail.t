#!/bin/sh
# "mf-bridge dot-qmail" as a .qmail program line before ./Maildir/, run by
# a real qmail-local: accepted and allow-listed mail is delivered (the
# next line runs), a blocked sender is bounced with the list's reply and
# nothing else, a failing stage defers; counted in the Maildir, in
# qmail-send's log, and by mf-stat reading that log.
. "$(dirname "$0")/lib.sh"
. "$top/t/qmail.sh"
need_qmail

mkdir -p "$tmp/lists" "$tmp/state"; chmod 755 "$tmp"
cat >"$tmp/lists/10-allow.list" <<'L'
match: sender
action: allow
friend@example.test
L
cat >"$tmp/lists/20-senders.list" <<'L'
match: sender
action: block
reply: 550 5.7.1 Mail from this sender is refused
blocked@example.test
L
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
bridge.stage lists data mf-lists check
CONF
chmod 644 "$tmp/mf.conf" "$tmp/lists/"*
chown -R alias "$tmp/state"
qm_dotqmail="|MF_CONFIG=$tmp/mf.conf PATH=$top/bin:/usr/bin:/bin mf-bridge dot-qmail
./Maildir/"
qm_start || { not_ok 'qmail starts'; done_testing; exit 1; }
# A recipient whose .qmail runs a stage that fails.
printf '|PATH=%s/bin:/usr/bin:/bin mf-bridge dot-qmail -- sh -c "exit 3"\n./Maildir/\n' "$top" >"$tmp/home/.qmail-err"
chown alias "$tmp/home/.qmail-err"; chmod 644 "$tmp/home/.qmail-err"

qm_swaks --from a@example.org --to test@example.test --header 'Subject: plain'
qm_wait_delivered 1
m=$(qm_mail 'Subject: plain')
check_grep 'accepted mail: the next line delivers it to the Maildir' "${m:-/dev/null}" '^Subject: plain'

qm_swaks --from friend@example.test --to test@example.test --header 'Subject: allowed'
qm_wait_delivered 2
m=$(qm_mail 'Subject: allowed')
check_grep 'an allow-list hit (accept) is delivered, not skipped as exit 99 would' "${m:-/dev/null}" '^Subject: allowed'

qm_swaks --from blocked@example.test --to test@example.test --header 'Subject: blocked sender'
qm_wait_log 'delivery [0-9]+: failure: '
check_grep 'a blocked sender: qmail-local fails the delivery (a bounce) with the list reply' "$tmp/qlog/current" 'delivery [0-9]+: failure: Mail_from_this_sender_is_refused_\(#5\.7\.1\)/$'
# The bounce goes to blocked@example.test, which is local: it lands in
# the same Maildir.
qm_wait_delivered 3
b=$(qm_mail 'failure notice')
check_grep '... and the bounce says the reply text' "${b:-/dev/null}" 'Mail from this sender is refused \(#5\.7\.1\)'
check_nogrep '... and nothing else: no list path, no stage output' "${b:-/dev/null}" "$tmp|20-senders|mf-lists|Mf-Stream|Mf-Verdict"
n=$(grep -l '^Subject: blocked sender' "$tmp/home/Maildir/new/"* | xargs grep -L 'failure notice' 2>/dev/null | wc -l)
if [ "$n" = 0 ]; then ok '... the blocked message is not in the Maildir (only in the bounce)'; else not_ok '... the blocked message is not in the Maildir' "$n copies"; fi

qm_swaks --from a@example.org --to err@example.test --header 'Subject: stage fails'
qm_wait_log 'delivery [0-9]+: deferral: '
check_grep 'a failing stage: the delivery is deferred, not bounced' "$tmp/qlog/current" 'delivery [0-9]+: deferral: Try_again_later_\(#4\.7\.1\)/$'
sleep 1
check_nogrep '... and it is not delivered' "$tmp/qlog/current" 'failure: Try_again'
n=$(grep -l '^Subject: stage fails' "$tmp/home/Maildir/new/"* 2>/dev/null | wc -l)
if [ "$n" = 0 ]; then ok '... and not in the Maildir'; else not_ok '... and not in the Maildir' "$n copies"; fi

# The counts: the Maildir and qmail-send's log agree, and so does mf-stat.
inbox=$(qm_delivered)
success=$(grep -c 'delivery [0-9]*: success:' "$tmp/qlog/current")
failure=$(grep -c 'delivery [0-9]*: failure:' "$tmp/qlog/current")
if [ "$inbox" = 3 ] && [ "$success" = 3 ] && [ "$failure" = 1 ]; then ok 'Maildir 3 (plain, allowed, the bounce), log 3 successes and 1 failure'
else not_ok 'Maildir and log counts' "maildir $inbox, successes $success, failures $failure"; fi
mf-stat --csv totals "$tmp/qlog/current" >"$tmp/stat" 2>&1
check_grep 'mf-stat: delivered equals the Maildir' "$tmp/stat" "^$inbox,delivered$"
check_grep 'mf-stat: one bounced' "$tmp/stat" '^1,bounced$'
check_grep 'mf-stat: the deferred message is counted' "$tmp/stat" '^1,deferred$'
done_testing
