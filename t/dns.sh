# Sourced by t/*.t that need real DNS servers on loopback: nsd serving
# the zone "test" and 2.0.192.in-addr.arpa from $dns/test.zone and
# $dns/rev.zone, and each zone NAME of $dns_zones from $dns/NAME.zone
# (records only; the SOA and NS are added here), rbldnsd
# serving DNS lists from data files in $dns/rbl, and a server that
# never answers (a stopped rbldnsd), for timeouts. All stop at exit.
dns=$tmp/dns
mkdir -p "$dns/rbl"
dns_pids=

need_dns() {
	why=
	command -v rbldnsd >/dev/null || [ -x /usr/sbin/rbldnsd ] || why="rbldnsd is not installed (t/deps installs it as root)"
	command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || why="${why:-nsd is not installed (t/deps installs it as root)}"
	command -v dig >/dev/null || why="${why:-dig is not installed (bind9-dnsutils)}"
	[ "$(id -u)" = 0 ] || why="${why:-needs root to start rbldnsd as nobody}"
	[ -z "$why" ] && return 0
	if [ -n "${CI:-}" ]; then not_ok "DNS servers available" "$why"; done_testing; exit 1; fi
	echo "1..0 # SKIP $why"
	exit 0
}
PATH=$PATH:/usr/sbin

dns_stop() {
	for p in $dns_pids; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	for p in $dns_pids; do wait "$p" 2>/dev/null; done
	dns_pids=
}
at_exit dns_stop

# dns_port: a UDP and TCP port nothing listens on.
dns_port() {
	p=$((20000 + ($$ * 13 + ${1:-0} * 101) % 30000))
	while ss -lnuH "sport = :$p" | grep -q . || ss -lntH "sport = :$p" | grep -q .; do p=$((p + 1)); done
	echo $p
}

# dns_wait PORT NAME: until the server on PORT answers a question for NAME.
dns_wait() {
	i=0
	until dig +time=1 +tries=1 -p "$1" @127.0.0.1 "$2" A >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 50 ] && return 1
		sleep 0.1
	done
}

# dns_start ZONESPEC...: starts nsd on $nsd_port and rbldnsd on
# $rbl_port serving ZONESPECs (bl.test:ip4set:bl.txt ...), and the
# silent server on $mute_port.
dns_start() {
	nsd_port=$(dns_port 1)
	for z in test rev ${dns_zones:-}; do
		origin=$z.
		[ $z = rev ] && origin=2.0.192.in-addr.arpa.
		{
			echo "\$ORIGIN $origin"
			echo "\$TTL 60"
			echo "@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60"
			echo "@ IN NS ns.test."
			[ $z = test ] && echo "ns IN A 127.0.0.1"
			cat "$dns/$z.zone" 2>/dev/null
		} >"$dns/$z.full"
	done
	cat >"$dns/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1@$nsd_port
	port: $nsd_port
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "$dns"
	database: ""
	zonelistfile: "$dns/zone.list"
	xfrdfile: "$dns/xfrd.state"
	xfrdir: "$dns"
	pidfile: "$dns/nsd.pid"
	logfile: "$dns/nsd.log"
	server-count: 1
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: test
	zonefile: "$dns/test.full"
zone:
	name: 2.0.192.in-addr.arpa
	zonefile: "$dns/rev.full"
CONF
	for z in ${dns_zones:-}; do
		printf 'zone:\n\tname: %s\n\tzonefile: "%s"\n' "$z" "$dns/$z.full" >>"$dns/nsd.conf"
	done
	# A port found free can be taken before the server binds it (other
	# tests run servers too): then it is started again on another.
	for try in 1 2 3; do
		nsd -d -c "$dns/nsd.conf" >>"$dns/nsd.log" 2>&1 &
		nsd_pid=$!
		dns_wait "$nsd_port" ns.test && break
		kill "$nsd_pid" 2>/dev/null; wait "$nsd_pid" 2>/dev/null; nsd_pid=
		old=$nsd_port nsd_port=$(dns_port $((1 + 10 * try)))
		sed -i "s/@$old\$/@$nsd_port/; s/^\tport: $old\$/\tport: $nsd_port/" "$dns/nsd.conf"
	done
	[ -n "$nsd_pid" ] || { log_tail "nsd did not answer" "$dns/nsd.log"; return 1; }
	dns_pids="$dns_pids $nsd_pid"
	chmod 755 "$tmp" "$dns" "$dns/rbl"; chmod 644 "$dns/rbl/"* 2>/dev/null
	zone=${1%%:*}
	rbldnsd_start 2 "2.0.0.127.$zone" "$@" || return 1
	rbl_port=$rbldnsd_port
	rbldnsd_start 3 "2.0.0.127.$zone" "$@" || return 1
	mute_port=$rbldnsd_port mute_pid=$rbldnsd_pid
	kill -STOP "$mute_pid"
}

# rbldnsd_start N NAME ARGS...: rbldnsd serving ARGS from $dns/rbl on a
# free port (dns_port N, another on each try, as for nsd), until it
# answers for NAME; sets $rbldnsd_port and $rbldnsd_pid.
rbldnsd_start() {
	rd_n=$1 rd_name=$2; shift 2
	for rd_try in 1 2 3; do
		rbldnsd_port=$(dns_port $((rd_n + 10 * rd_try)))
		rbldnsd -n -q -u nobody -w "$dns/rbl" -b "127.0.0.1/$rbldnsd_port" "$@" >>"$dns/rbldnsd.log" 2>&1 &
		rbldnsd_pid=$!
		if dns_wait "$rbldnsd_port" "$rd_name"; then
			dns_pids="$dns_pids $rbldnsd_pid"
			return 0
		fi
		kill "$rbldnsd_pid" 2>/dev/null; wait "$rbldnsd_pid" 2>/dev/null
	done
	log_tail "rbldnsd did not answer on port $rbldnsd_port" "$dns/rbldnsd.log"
	return 1
}
