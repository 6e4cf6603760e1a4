# Sourced by t/*.t that need a redis-server of their own.

# redis_start [ARG...]: a redis-server on a free loopback port ($port,
# pid $rpid) with nothing saved, extra arguments passed on (such as
# --requirepass); a few ports are tried until one stays up.
redis_start() {
	for try in 1 2 3 4 5; do
		port=$((20000 + ($$ * 7 + try * 131) % 30000))
		redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" "$@" >"$tmp/redis.log" 2>&1 &
		rpid=$!
		for i in 1 2 3 4 5 6 7 8 9 10; do
			grep -q 'Ready to accept' "$tmp/redis.log" && break
			kill -0 $rpid 2>/dev/null || break
			sleep 0.1
		done
		grep -q 'Ready to accept' "$tmp/redis.log" && return 0
		kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rpid=
	done
	return 1
}
