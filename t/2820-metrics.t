#!/bin/sh
# mf-bridge's metrics behind a real Postfix: decisions by phase and
# outcome, stage runs, durations and failures by cause, reloads, read
# with curl as Prometheus would and by mf-bridge status for a person.
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
need curl curl || { skip 'metrics read with curl' 'curl missing'; done_testing; exit 0; }
mkdir -p "$tmp/lists" "$tmp/state"; chmod 755 "$tmp"; chown games "$tmp/state"
printf 'match: rcpt\naction: block\nreply: 550 5.1.1 No such user here\nblocked@example.test\n' >"$tmp/lists/20-rcpts.list"
chmod -R a+rX "$tmp/lists"
mport=$(free_port)
cat >"$tmp/mf.conf" <<CONF
state-dir $tmp/state
lists.dir $tmp/lists
bridge.metrics 127.0.0.1:$mport
bridge.stage lists rcpt mf-lists check
bridge.stage flaky data input=message output=exit on-error=accept -- sh -c 'grep -q "^Subject: FAILME" && { echo "flaky: out of luck" >&2; exit 3; }; exit 0'
bridge.stage slow data timeout=1s input=message output=exit on-error=accept -- sh -c 'grep -q "^Subject: SLOWME" && sleep 5; exit 0'
CONF
bridge_start "$tmp/mf.conf" || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }
check_grep 'the bridge says where its metrics are' "$tmp/bridge.log" "metrics on http://127\\.0\\.0\\.1:$mport/metrics"
send() { name=$1; shift; swaks --server 127.0.0.1:$pf_port --from a@example.org "$@" >"$tmp/$name" 2>&1; }
send ok --to alice@example.test --header "Subject: hello"
send blocked --to blocked@example.test --header "Subject: hello"
send fail --to alice@example.test --header "Subject: FAILME"
send slow --to alice@example.test --header "Subject: SLOWME"
sleep 0.5
run "curl -sf http://127.0.0.1:$mport/metrics"
cp "$tmp/out" "$tmp/metrics"
m() { check_grep "$1" "$tmp/metrics" "$2"; }
m 'metrics: messages accepted at data' '^mf_decisions_total\{outcome="accept",phase="data"\} 3$'
m '... a recipient refused at rcpt' '^mf_decisions_total\{outcome="reject",phase="rcpt"\} 1$'
m 'stage runs by stage and outcome' '^mf_stage_runs_total\{outcome="reject",stage="lists"\} 1$'
m 'stage durations' '^mf_stage_duration_seconds_count\{stage="flaky"\} 3$'
m 'stage failures by cause: an exit code' '^mf_stage_failures_total\{cause="exit",stage="flaky"\} 1$'
m '... and a timeout' '^mf_stage_failures_total\{cause="timeout",stage="slow"\} 1$'
m 'sessions in flight' '^mf_sessions_in_flight [0-9]+$'
m 'spool space' '^mf_spool_free_bytes [0-9.e+]+$'
# The runtime as the servers set it where the environment does not
# (mf-bridge(8), ENVIRONMENT).
m 'the collector runs at GOGC 400' '^go_gc_gogc_percent 400$'
if [ "$(nproc)" -le 2 ]; then
	m "on $(nproc) core(s), Go code runs on one thread" '^go_sched_gomaxprocs_threads 1$'
else
	skip 'on one or two cores, Go code runs on one thread' "$(nproc) cores here, where the runtime's own choice stands"
fi
cp "$tmp/mf.conf" "$tmp/mf.conf.good"
echo 'bridge.stage broken nowhere prog' >>"$tmp/mf.conf"
kill -HUP $bridge_pid; sleep 0.5
cp "$tmp/mf.conf.good" "$tmp/mf.conf"
kill -HUP $bridge_pid; sleep 0.5
run "curl -sf http://127.0.0.1:$mport/metrics"
check_grep 'reloads: one refused' "$tmp/out" '^mf_reloads_total\{result="refused"\} 1$'
check_grep '... and one taken' "$tmp/out" '^mf_reloads_total\{result="ok"\} 1$'
run "mf-bridge --config $tmp/mf.conf status"
check_grep 'mf-bridge status: reloads, for a person' "$tmp/out" '^configuration loaded .* ago; reloads: 1 ok, 1 refused$'
check_grep '... decisions' "$tmp/out" '^  data +accept +3$'
check_grep '... stage failures' "$tmp/out" '^  slow +timeout +1$'
check_grep '... stage time' "$tmp/out" '^  lists +4 +[0-9.]+ms$'
bridge_stop
export GOMAXPROCS=2 GOGC=100
bridge_start "$tmp/mf.conf" || not_ok 'mf-bridge listens with GOMAXPROCS and GOGC set'
unset GOMAXPROCS GOGC
run "curl -sf http://127.0.0.1:$mport/metrics"
check_grep 'GOGC set: it stands' "$tmp/out" '^go_gc_gogc_percent 100$'
check_grep 'GOMAXPROCS set: it stands' "$tmp/out" '^go_sched_gomaxprocs_threads 2$'
bridge_stop
check_status 'status of a bridge that is not running: exit 75' error "mf-bridge --config $tmp/mf.conf status"
check_grep '... saying so' "$tmp/err" 'is mf-bridge milter running'
done_testing
