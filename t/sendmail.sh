# Sourced by t/*.t that need a real sendmail 8.17: Debian's packages
# unpacked into a private root (never installed, /etc/mail untouched),
# run in its own mount and UTS namespace with a dotted host name, a hosts
# file and a /dev/log of its own, delivering every address through a
# test mailer into $sm_dir/mail (PROTOCOLS.md §12). Needs root, unshare,
# m4-free: the m4 comes from the same packages. Source t/postfix.sh first.

sm_pkgs="sendmail-bin sendmail-base sendmail-cf libmilter1.0.1 libwrap0 liblockfile1 m4"

# need_sendmail: skips the file (fails under CI) when it cannot run.
need_sendmail() {
	why=
	[ "$(id -u)" = 0 ] || why="needs root for a private sendmail"
	command -v unshare >/dev/null || why="unshare is not installed (util-linux)"
	command -v python3 >/dev/null || why="${why:-python3 is not installed (its /dev/log reader)}"
	command -v swaks >/dev/null || why="${why:-swaks is not installed}"
	[ -z "$why" ] && sm_root && return 0
	why=${why:-"sendmail packages could not be fetched (apt-get download $sm_pkgs)"}
	if [ -n "${CI:-}" ]; then not_ok "sendmail available" "$why"; done_testing; exit 1; fi
	echo "1..0 # SKIP $why"
	exit 0
}

# sm_root: the unpacked packages, fetched once per machine.
sm_root() {
	sm_root=${MF_T_CACHE:-/var/tmp/mf-t-cache}/sendmail-root
	[ -x "$sm_root/usr/libexec/sendmail/sendmail" ] && return 0
	d=$(mktemp -d "${TMPDIR:-/tmp}/mf-sm-debs.XXXXXX")
	(cd "$d" && apt-get download $sm_pkgs >/dev/null 2>&1) || { rm -rf "$d"; return 1; }
	mkdir -p "$sm_root.new"
	for f in "$d"/*.deb; do dpkg -x "$f" "$sm_root.new" || { rm -rf "$d" "$sm_root.new"; return 1; }; done
	# setgid mail makes glibc ignore LD_LIBRARY_PATH as root: a plain copy.
	chmod 0755 "$sm_root.new/usr/libexec/sendmail/sendmail"
	rm -rf "$d" "$sm_root"
	mv "$sm_root.new" "$sm_root"
}

# sm_start MILTER [TIMEOUTS]: sendmail on a free loopback port ($sm_port)
# with mf-bridge at MILTER (inet:HOST:PORT, as bridge_start gives it) and
# the milter timeouts TIMEOUTS (default C:30s;S:30s;R:1m;E:5m).
sm_start() {
	sm_dir=$tmp/sm
	mkdir -p "$sm_dir/mail" "$sm_dir/queue" "$sm_dir/dev"
	chmod 0700 "$sm_dir/queue"; chmod 0777 "$sm_dir/mail"
	sm_port=$(free_port)
	host=${1#inet:}; mport=${host##*:}; host=${host%:*}
	cat >"$sm_dir/deliver" <<'D'
#!/bin/sh
# deliver USER: one file per message and recipient.
umask 022
cat >"$(dirname "$0")/mail/$1.$(date +%s%N).$$"
D
	chmod 755 "$sm_dir/deliver"
	echo "hosts files" >"$sm_dir/service.switch"
	printf '127.0.0.1 localhost mta.mf.test mta\n::1 localhost\n' >"$sm_dir/hosts"
	: >"$sm_dir/aliases"
	q=\`
	cat >"$sm_dir/x.mc" <<M
divert(-1)
divert(0)dnl
include(${q}$sm_root/usr/share/sendmail/cf/m4/cf.m4')dnl
OSTYPE(${q}linux')dnl
define(${q}MAIL_SETTINGS_DIR', ${q}$sm_dir/')dnl
define(${q}QUEUE_DIR', ${q}$sm_dir/queue')dnl
define(${q}STATUS_FILE', ${q}$sm_dir/statistics')dnl
define(${q}confPID_FILE', ${q}$sm_dir/sendmail.pid')dnl
define(${q}ALIAS_FILE', ${q}$sm_dir/aliases')dnl
define(${q}confAUTH_MECHANISMS', ${q}')dnl
define(${q}confTO_IDENT', ${q}0s')dnl
define(${q}confDONT_BLAME_SENDMAIL', ${q}TrustStickyBit')dnl
define(${q}confSERVICE_SWITCH_FILE', ${q}$sm_dir/service.switch')dnl
define(${q}confHOSTS_FILE', ${q}$sm_dir/hosts')dnl
define(${q}confDONT_PROBE_INTERFACES', ${q}True')dnl
FEATURE(${q}no_default_msa')dnl
FEATURE(${q}nocanonify')dnl
FEATURE(${q}accept_unresolvable_domains')dnl
FEATURE(${q}accept_unqualified_senders')dnl
DAEMON_OPTIONS(${q}Addr=127.0.0.1, Port=$sm_port, Name=MTA')dnl
INPUT_MAIL_FILTER(${q}mf', ${q}S=inet:$mport@$host, F=T, T=${2:-C:30s;S:30s;R:1m;E:5m}')dnl
MAILER(${q}local')dnl
MAILER(${q}smtp')dnl
LOCAL_CONFIG
Mtest, P=$sm_dir/deliver, F=lsDFMPnquS, D=$sm_dir/mail, A=deliver \$u
LOCAL_RULE_0
R\$* < @ \$* > \$*	\$#test \$: \$1
R\$*	\$#test \$: \$1
M
	"$sm_root/usr/bin/m4" "$sm_dir/x.mc" >"$sm_dir/x.cf" || return 1
	cat >"$sm_dir/syslogd.py" <<'P'
# A /dev/log of sendmail's own: each datagram one line of $sm_dir/maillog.
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], 'ab', buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b'\0\n') + b'\n')
P
	: >"$sm_dir/maillog"
	for n in null zero random urandom tty; do : >"$sm_dir/dev/$n"; done
	cat >"$sm_dir/start" <<S
set -e
hostname mta.mf.test
mount --bind $sm_dir/hosts /etc/hosts
for n in null zero random urandom tty; do mount --bind /dev/\$n $sm_dir/dev/\$n; done
mount -t tmpfs -o size=1m none /dev
for n in null zero random urandom tty; do : >/dev/\$n; mount --bind $sm_dir/dev/\$n /dev/\$n; done
python3 $sm_dir/syslogd.py /dev/log $sm_dir/maillog &
for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /dev/log ] && break; sleep 0.1; done
LD_LIBRARY_PATH=$sm_root/usr/lib/x86_64-linux-gnu $sm_root/usr/libexec/sendmail/sendmail -C $sm_dir/x.cf -L sm-mta -bd -q1m
wait
S
	unshare --mount --uts --propagation private sh "$sm_dir/start" >"$sm_dir/start.log" 2>&1 &
	sm_ns=$!
	# sendmail rewrites its argv, and a TCP probe would start a session
	# (and wake the milter): wait for the listening socket in /proc.
	hex=$(printf '%04X' "$sm_port")
	i=0
	until grep -q ":$hex 00000000:0000 0A" /proc/net/tcp; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "# sendmail did not listen on $sm_port"; cat "$sm_dir/start.log" "$sm_dir/maillog" | sed 's/^/# /'; return 1; }
		sleep 0.1
	done
}

sm_stop() {
	for p in $(grep -l "$sm_dir" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill "$p" 2>/dev/null; done
	[ -f "$sm_dir/sendmail.pid" ] && kill "$(head -1 "$sm_dir/sendmail.pid")" 2>/dev/null
	wait $sm_ns 2>/dev/null
}

# sm_send ARGS...: one message through sendmail with swaks.
sm_send() { swaks --server 127.0.0.1:$sm_port --helo client.example "$@" >"$tmp/swaks.log" 2>&1; }
