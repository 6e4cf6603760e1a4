# Sourced by t/*.t that need a real Postfix: a private instance under
# $tmp/pf (postfix -c, loopback only, /etc/postfix untouched) delivering
# everything for @example.test into one Maildir, and mf-bridge beside it.
# Needs root; outside CI a test without it is skipped, saying why.

need_postfix() {
	why=
	[ "$(id -u)" = 0 ] || why="needs root to run a private Postfix"
	command -v postfix >/dev/null || why="postfix is not installed (t/deps installs it as root)"
	command -v swaks >/dev/null || why="${why:-swaks is not installed}"
	[ -z "$why" ] && return 0
	if [ -n "${CI:-}" ]; then not_ok "postfix available" "$why"; done_testing; exit 1; fi
	echo "1..0 # SKIP $why"
	exit 0
}

# pf_start MILTER: starts Postfix on a free loopback port ($pf_port) with
# smtpd_milters = MILTER (empty: none). Extra main.cf lines come from
# $pf_extra, extra master.cf lines (more smtpd listeners) from $pf_master.
pf_start() {
	pf=$tmp/pf
	mkdir -p "$pf/etc" "$pf/spool" "$pf/data" "$pf/mail"
	chown postfix:postfix "$pf/data"
	chown nobody:nogroup "$pf/mail"
	chmod 755 "$tmp"
	pf_port=$(free_port)
	cat >"$pf/etc/main.cf" <<CF
compatibility_level = 3.6
myhostname = mx.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination =
queue_directory = $pf/spool
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
virtual_mailbox_domains = example.test
virtual_mailbox_base = $pf/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_milters = $1
milter_default_action = tempfail
milter_protocol = 6
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 100
${pf_extra:-}
CF
	cat >"$pf/etc/master.cf" <<MC
127.0.0.1:$pf_port inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
${pf_master:-}
MC
	postfix -c "$pf/etc" check >/dev/null 2>&1
	postfix -c "$pf/etc" start >"$tmp/pf-start" 2>&1 || { sed 's/^/# /' "$tmp/pf-start"; return 1; }
	i=0
	until swaks --server 127.0.0.1:$pf_port --quit-after CONNECT >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "# postfix did not answer on $pf_port"; return 1; }
		sleep 0.1
	done
}

pf_stop() {
	[ -n "${pf:-}" ] && postfix -c "$pf/etc" stop >/dev/null 2>&1
	pf=
}

# pf_delivered: number of messages in the Maildir.
pf_delivered() { ls "$tmp/pf/mail/inbox/new" 2>/dev/null | wc -l; }

# pf_wait_delivered N: waits until N messages are in the Maildir.
pf_wait_delivered() {
	i=0
	while [ "$(pf_delivered)" -lt "$1" ]; do
		i=$((i + 1)); [ $i -gt 300 ] && return 1
		sleep 0.1
	done
}

# pf_mail PATTERN: the delivered message whose text matches PATTERN.
pf_mail() { grep -l -- "$1" "$tmp/pf/mail/inbox/new/"* 2>/dev/null | head -1; }

# pf_queue: the queue as postqueue shows it (held mail has "!").
pf_queue() { postqueue -c "$tmp/pf/etc" -p; }

# free_port [ABOVE]: a TCP port nothing listens on, from a range by the
# pid, or the first such port above ABOVE.
free_port() {
	p=$((${1:-$((20000 + ($$ * 7) % 30000 - 1))} + 1))
	while ss -ltnH "sport = :$p" | grep -q .; do p=$((p + 1)); done
	echo $p
}

# bridge_start CONF [ARGS...]: starts mf-bridge milter with CONF on a
# free port, as nobody with its stages as games (state the stages write
# belongs to games), or with bridge_alone set started as nobody, its
# stages as nobody; $bridge_addr is what Postfix's smtpd_milters wants.
bridge_start() {
	conf=$1; shift
	chmod 755 "$tmp" # the stage user runs programs below it: checked at start
	: >"$tmp/bridge.log"
	if [ -n "${bridge_alone:-}" ]; then
		# Started as nobody with no capability: its stages run as
		# nobody too, and mf's own stages inside it (mf-bridge(8)).
		setpriv --reuid=nobody --regid=nogroup --clear-groups mf-bridge --config "$conf" "$@" milter --listen inet:127.0.0.1:0 >"$tmp/bridge.out" 2>>"$tmp/bridge.log" &
	else
		mf-bridge --config "$conf" --user nobody --stage-user games "$@" milter --listen inet:127.0.0.1:0 >"$tmp/bridge.out" 2>>"$tmp/bridge.log" &
	fi
	bridge_pid=$!
	i=0
	until grep -q 'listening on' "$tmp/bridge.log"; do
		i=$((i + 1)); [ $i -gt 100 ] && { log_tail "mf-bridge did not listen" "$tmp/bridge.log"; return 1; }
		kill -0 $bridge_pid 2>/dev/null || { log_tail "mf-bridge exited" "$tmp/bridge.log"; return 1; }
		sleep 0.05
	done
	bridge_addr=inet:$(sed -n 's/.*listening on tcp:\([0-9.:]*\) .*/\1/p' "$tmp/bridge.log" | tail -1)
}

bridge_stop() {
	[ -n "${bridge_pid:-}" ] && kill $bridge_pid 2>/dev/null && wait $bridge_pid 2>/dev/null
	bridge_pid=
}

at_exit "pf_stop; bridge_stop"
