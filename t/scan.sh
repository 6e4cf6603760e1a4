# Sourced by t/23*.t: a real clamd with a local signature database that
# detects EICAR (and nothing from the network: no freshclam), and a real
# spamd with the packaged rules, network tests and Bayes off, each on a
# private unix socket or a free loopback port under $tmp, stopped at the
# end. Outside CI a missing server skips the file, saying why.

# scan_need PROG PKG...: the programs exist, or the file is skipped.
scan_need() {
	for p in "$@"; do
		command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] && continue
		if [ -n "${CI:-}" ]; then not_ok "$p installed" "missing: t/deps installs it"; done_testing; exit 1; fi
		echo "1..0 # SKIP $p is not installed (t/deps installs it as root)"
		exit 0
	done
	[ "$(id -u)" = 0 ] && return 0
	if [ -n "${CI:-}" ]; then not_ok "running as root" "clamd and spamd drop to their own users"; done_testing; exit 1; fi
	echo "1..0 # SKIP needs root to run clamd and spamd as their own users"
	exit 0
}

scan_cleanup() {
	clamd_stop
	spamd_stop
}
at_exit scan_cleanup

# clamd_start: clamd on $clamd_sock and 127.0.0.1:$clamd_port, with
# StreamMaxLength ${clamd_stream_max:-10M}.
clamd_start() {
	cd_dir=$tmp/clamd
	mkdir -p "$cd_dir/db"
	chmod 755 "$tmp"
	# EICAR as MD5:size:name (whole files and parts clamd extracts) and
	# as a body signature (anywhere, any file type).
	printf '44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n' >"$cd_dir/db/test.hdb"
	printf 'Eicar-Test-NDB:0:*:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a\n' >"$cd_dir/db/test.ndb"
	clamd_sock=$cd_dir/clamd.sock
	clamd_port=$(free_port)
	cat >"$cd_dir/clamd.conf" <<CONF
DatabaseDirectory $cd_dir/db
LocalSocket $clamd_sock
LocalSocketMode 666
FixStaleSocket yes
TCPSocket $clamd_port
TCPAddr 127.0.0.1
Foreground yes
User clamav
LogFile $cd_dir/clamd.log
LogTime yes
PidFile $cd_dir/clamd.pid
StreamMaxLength ${clamd_stream_max:-10M}
SelfCheck 0
CONF
	chown -R clamav:clamav "$cd_dir"
	clamd -c "$cd_dir/clamd.conf" >"$cd_dir/stdout" 2>&1 &
	clamd_pid=$!
	i=0
	until [ -S "$clamd_sock" ] && clamdscan --config-file="$cd_dir/clamd.conf" --ping 1 >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 300 ] || ! kill -0 $clamd_pid 2>/dev/null; then
			echo "# clamd did not start:"; sed 's/^/# /' "$cd_dir/stdout" "$cd_dir/clamd.log" 2>/dev/null | tail -5
			clamd_pid=
			return 1
		fi
		sleep 0.1
	done
}

clamd_stop() {
	[ -n "${clamd_pid:-}" ] || return 0
	kill $clamd_pid 2>/dev/null
	wait $clamd_pid 2>/dev/null
	clamd_pid=
}

# spamd_start: spamd on 127.0.0.1:$spamd_port, local tests only, no
# Bayes, no user configuration files.
spamd_start() {
	sd_dir=$tmp/spamd
	chmod 755 "$tmp"
	mkdir -p "$sd_dir"
	cp -r /etc/spamassassin "$sd_dir/etc"
	printf 'use_bayes 0\nbayes_auto_learn 0\nskip_rbl_checks 1\ndns_available no\n' >>"$sd_dir/etc/local.cf"
	spamd_port=$(free_port)
	[ -n "${clamd_port:-}" ] && [ "$spamd_port" = "$clamd_port" ] && spamd_port=$((spamd_port + 1))
	spamd --listen="127.0.0.1:$spamd_port" --allowed-ips=127.0.0.1 --max-children=${spamd_children:-2} \
		--username=nobody --nouser-config --siteconfigpath="$sd_dir/etc" -s stderr -L \
		--pidfile="$sd_dir/spamd.pid" >"$sd_dir/stdout" 2>"$sd_dir/log" &
	spamd_pid=$!
	i=0
	until spamc -d 127.0.0.1 -p "$spamd_port" -K >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 $spamd_pid 2>/dev/null; then
			log_tail "spamd did not start" "$sd_dir/log"
			spamd_pid=
			return 1
		fi
		sleep 0.1
	done
}

spamd_stop() {
	[ -n "${spamd_pid:-}" ] || return 0
	kill $spamd_pid 2>/dev/null
	wait $spamd_pid 2>/dev/null
	spamd_pid=
}
