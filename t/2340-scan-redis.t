#!/bin/sh
# Two MX hosts sharing one redis-server and one clamd: the result cache
# one host fills saves the other the scan, and the client one host
# blocks is refused by mf-lists on the other.
. "$(dirname "$0")/lib.sh"
. "$top/t/redis.sh"
. "$top/t/postfix.sh"
. "$top/t/scan.sh"
scan_need clamd redis-server
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
eicar=$data/strings/eicar.com.txt

redis_start --requirepass s3cret
[ -n "$rpid" ] || { not_ok 'redis-server did not start' "$(tail -3 "$tmp/redis.log")"; done_testing; exit 1; }
at_exit 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null'
clamd_start || { not_ok 'clamd starts'; done_testing; exit 1; }
ok 'redis-server and clamd run'

url=redis://:s3cret@127.0.0.1:$port/0
printf 'scan.engine av clamd addr=unix:%s block=client:virus-hosts:1h\nscan.cache-ttl 1h\n' "$clamd_sock" >"$tmp/mf.conf"
A="mf-scan -c $tmp/mf.conf --state $url --state-dir $tmp/a check --output stream"
B="mf-scan -c $tmp/mf.conf --state $url --state-dir $tmp/b check --output stream"
{ printf 'Received: by host a\nSubject: virus\n\n'; cat "$eicar"; printf '\n'; } >"$tmp/a.eml"
{ printf 'Received: by host b\nSubject: virus\n\n'; cat "$eicar"; printf '\n'; } >"$tmp/b.eml"
check_status 'host A scans a virus' reject "$A --client 192.0.2.50 <$tmp/a.eml"
check_grep '... with clamd' "$tmp/out" '^Mf-Trace: mf-scan reject by=av av=infected blocked=1 '
check_status 'host B gets the same body' reject "$B --client 192.0.2.51 <$tmp/b.eml"
check_grep '... from the shared cache' "$tmp/out" '^Mf-Trace: mf-scan reject by=av av=infected:cached blocked=1 '
mkdir -p "$tmp/lists"
L="mf-lists --dir $tmp/lists --state $url check --output none"
check_status "mf-lists on host B refuses host A's infected client" reject "$L --state-dir $tmp/b --client 192.0.2.50 </dev/null"
check_status '... and host A the one B blocked' reject "$L --state-dir $tmp/a --client 192.0.2.51 </dev/null"
[ ! -e "$tmp/a/kv" ] || [ -z "$(ls "$tmp/a/kv")" ] && ok 'nothing was kept in the state directory' || not_ok 'nothing was kept in the state directory' "$(ls "$tmp/a/kv")"
kill $rpid; wait $rpid 2>/dev/null
check_status 'redis down: the cache is missed, the scan still runs' reject "$A --lock-timeout 1s --client 192.0.2.52 <$tmp/a.eml"
check_grep '... saying so' "$tmp/err" 'cache: '
check_grep '... and the feedback failure too' "$tmp/err" 'feedback to virus-hosts: '
done_testing
