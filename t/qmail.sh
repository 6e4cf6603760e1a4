# Sourced by t/*.t that need a real qmail: notqmail built from the
# vendored source into a private prefix under $tmp/q, qmail-send with
# its log under multilog, qmail-smtpd under tcpserver on a free loopback
# port, local mail for @example.test delivered by qmail-local into
# $tmp/home/Maildir, and every remote domain routed to a closed loopback
# port, so nothing leaves the machine. Needs root (the qmail users, the
# setuid parts); outside CI a test without it is skipped, saying why.
#
# The compiled tree is kept in a cache ($MF_CACHE, default
# /var/tmp/mf-cache): a test copies it, names its own prefix in
# conf-qmail and relinks, well under a second.

qm_version=notqmail-a7012e4
qm_tarball=$top/../shared/vendor/$qm_version.tar.gz
[ -f "$qm_tarball" ] || qm_tarball=/work/shared/vendor/$qm_version.tar.gz

need_qmail() {
	why=
	[ "$(id -u)" = 0 ] || why="needs root to run a private qmail"
	[ -f "$qm_tarball" ] || why="${why:-no $qm_version.tar.gz in ../shared/vendor}"
	for p in gcc:gcc make:make tcpserver:ucspi-tcp tcprules:ucspi-tcp multilog:daemontools swaks:swaks flock:util-linux; do
		command -v "${p%%:*}" >/dev/null || why="${why:-${p%%:*} is not installed (apt-get install ${p#*:}; t/deps)}"
	done
	[ -z "$why" ] && return 0
	if [ -n "${CI:-}" ]; then not_ok "qmail available" "$why"; done_testing; exit 1; fi
	echo "1..0 # SKIP $why"
	exit 0
}

# qm_users: the users and groups qmail looks up by name at run time.
command -v free_port >/dev/null || . "$top/t/postfix.sh"

qm_users() {
	for g in qmail nofiles; do
		getent group $g >/dev/null || groupadd -r $g || return 1
	done
	for u in alias:nofiles qmaild:nofiles qmaill:nofiles qmailp:nofiles qmailq:qmail qmailr:qmail qmails:qmail; do
		getent passwd "${u%%:*}" >/dev/null ||
			useradd -r -M -N -g "${u#*:}" -d /nonexistent -s /usr/sbin/nologin "${u%%:*}" || return 1
	done
}

# qm_cache: the compiled tree, built once for every test.
qm_cache() {
	cache=${MF_CACHE:-/var/tmp/mf-cache}
	qm_tree=$cache/$qm_version
	[ -f "$qm_tree/.built" ] && return 0
	mkdir -p "$cache" || return 1
	(
		flock 9
		[ -f "$qm_tree/.built" ] && exit 0
		rm -rf "$qm_tree.new" && mkdir -p "$qm_tree.new" &&
			tar xzf "$qm_tarball" -C "$qm_tree.new" --strip-components=1 &&
			echo /var/qmail >"$qm_tree.new/conf-qmail" &&
			make -C "$qm_tree.new" -j2 it man >"$cache/$qm_version.log" 2>&1 &&
			touch "$qm_tree.new/.built" && rm -rf "$qm_tree" && mv "$qm_tree.new" "$qm_tree"
	) 9>"$cache/$qm_version.lock"
	[ -f "$qm_tree/.built" ] || { log_tail "building $qm_version failed: $cache/$qm_version.log" "$cache/$qm_version.log"; return 1; }
}

# qm_install: qmail under $tmp/q ($qm), relinked for that prefix.
qm_install() {
	qm_users && qm_cache || return 1
	chmod 755 "$tmp"
	qm=$tmp/q
	cp -a "$qm_tree" "$tmp/qsrc" && echo "$qm" >"$tmp/qsrc/conf-qmail" &&
		make -C "$tmp/qsrc" it >"$tmp/qbuild.log" 2>&1 &&
		(cd "$tmp/qsrc" && ./instpackage && ./instchown) >>"$tmp/qbuild.log" 2>&1 ||
		{ tail -5 "$tmp/qbuild.log" | sed 's/^/# /'; return 1; }
}

# qm_start: qmail-send and qmail-smtpd on $qm_port. $qm_rules are
# tcprules lines (default: 127.* allowed, QMAILQUEUE=$qm_queue when
# set, and $qm_env added to it); the home of every local address is
# $tmp/home, whose .qmail-default is $qm_dotqmail (default ./Maildir/).
qm_start() {
	qm_install || return 1
	printf 'mx.example.test\n' >"$qm/control/me"
	printf 'example.test\nmx.example.test\n' >"$qm/control/locals"
	printf 'example.test\nmx.example.test\n' >"$qm/control/rcpthosts"
	printf ':127.0.0.1:9\n' >"$qm/control/smtproutes"
	printf 'example.test\n' >"$qm/control/defaultdomain"
	# Every local address is delivered as the alias user in $tmp/home.
	home=$tmp/home
	mkdir -p "$home/Maildir/new" "$home/Maildir/cur" "$home/Maildir/tmp"
	printf '%s\n' "${qm_dotqmail:-./Maildir/}" >"$home/.qmail-default"
	chmod 644 "$home/.qmail-default"
	chown -R alias:nofiles "$home"
	chmod 755 "$home"
	printf '+:alias:%s:%s:%s:-::\n.\n' "$(id -u alias)" "$(id -g alias)" "$home" >"$qm/users/assign"
	(cd "$qm" && bin/qmail-newu) || return 1
	mkdir -p "$tmp/qlog"
	chown qmaill "$tmp/qlog"
	(cd "$qm" && exec env - PATH="$qm/bin:$PATH" qmail-start ./Maildir/ multilog t "$tmp/qlog") &
	qm_send_pid=$!
	rules=${qm_rules:-}
	if [ -z "$rules" ]; then
		rules="127.:allow${qm_queue:+,QMAILQUEUE=\"$qm_queue\"}${qm_env:-}"
	fi
	printf '%s\n:deny\n' "$rules" >"$tmp/tcp.smtp"
	tcprules "$tmp/tcp.smtp.cdb" "$tmp/tcp.smtp.tmp" <"$tmp/tcp.smtp" || return 1
	qm_port=$(free_port)
	: >"$tmp/smtpd.log"
	(cd "$qm" && exec env - PATH="$qm/bin:$PATH" tcpserver -v -R -H -l mx.example.test -x "$tmp/tcp.smtp.cdb" \
		-u "$(id -u qmaild)" -g "$(id -g qmaild)" 127.0.0.1 "$qm_port" qmail-smtpd) 2>>"$tmp/smtpd.log" &
	qm_smtpd_pid=$!
	i=0
	until grep -q 'tcpserver: status' "$tmp/smtpd.log"; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "# qmail-smtpd did not start:"; sed 's/^/# /' "$tmp/smtpd.log"; return 1; }
		sleep 0.05
	done
}

qm_stop() {
	[ -n "${qm_smtpd_pid:-}" ] && kill "$qm_smtpd_pid" 2>/dev/null && wait "$qm_smtpd_pid" 2>/dev/null
	[ -n "${qm_send_pid:-}" ] && kill "$qm_send_pid" 2>/dev/null && wait "$qm_send_pid" 2>/dev/null
	qm_smtpd_pid= qm_send_pid=
}
at_exit qm_stop

# qm_swaks ARGS...: one SMTP transaction with qmail-smtpd; the dialogue
# is in $tmp/swaks, the exit status in $rc.
qm_swaks() {
	swaks --server 127.0.0.1:"$qm_port" --helo client.example.test --timeout 60 "$@" >"$tmp/swaks" 2>&1
	rc=$?
}

# qm_delivered: number of messages in the test Maildir.
qm_delivered() { ls "$tmp/home/Maildir/new" 2>/dev/null | wc -l; }

# qm_wait_delivered N: waits until N messages are in the Maildir.
qm_wait_delivered() {
	i=0
	while [ "$(qm_delivered)" -lt "$1" ]; do
		i=$((i + 1)); [ $i -gt 600 ] && return 1
		sleep 0.1
	done
}

# qm_wait_log ERE: waits until qmail-send's log has a line matching ERE.
qm_wait_log() {
	i=0
	until grep -Eq -- "$1" "$tmp/qlog/current" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 600 ] && return 1
		sleep 0.1
	done
}

# qm_mail PATTERN: the delivered message whose text matches PATTERN.
qm_mail() { grep -l -- "$1" "$tmp/home/Maildir/new/"* 2>/dev/null | head -1; }

# qm_queue_empty: waits until qmail's queue holds no message.
qm_queue_empty() {
	i=0
	while [ -n "$(find "$qm/queue/mess" -type f 2>/dev/null | head -1)" ]; do
		i=$((i + 1)); [ $i -gt 600 ] && return 1
		sleep 0.1
	done
}
