#!/bin/sh
# mf.conf: precedence, sections, and errors that name file and line.
. "$(dirname "$0")/lib.sh"

mkdir "$tmp/file" "$tmp/env" "$tmp/flag"
cat >"$tmp/mf.conf" <<EOF
# a comment
lock-timeout 3s
lists.dir $tmp/file   # inline comment
quota.limit whatever  # another command's section: not ours to judge
bridge.listen inet:127.0.0.1:7357
EOF
P="mf-lists --config $tmp/mf.conf --print-config check"
# dir_of ENV: lists.dir and where it came from, as --print-config says.
dir_of() { sh -c "$1 $P" 2>&1 | awk '/^lists\.dir /{print $2, $4}'; }

got=$(dir_of ''); [ "$got" = "$tmp/file $tmp/mf.conf:3" ] && ok 'file beats default' || not_ok 'file beats default' "$got"
got=$(dir_of "MF_DIR=$tmp/env"); [ "$got" = "$tmp/env environment" ] && ok 'environment beats file' || not_ok 'environment beats file' "$got"
P="$P --dir $tmp/flag"
got=$(dir_of "MF_DIR=$tmp/env"); [ "$got" = "$tmp/flag command" ] && ok 'flag beats environment and file' || not_ok 'flag beats environment and file' "$got"
P="mf-lists --config $tmp/mf.conf --print-config check"
run "$P"; check_grep 'a global key from the file' "$tmp/out" '^lock-timeout +3s +# .*mf\.conf:2$'
run "mf-lists --config /dev/null --print-config check"; check_grep 'defaults without a file' "$tmp/out" '^lists\.dir +/etc/mf/lists +# default$'
run "MF_CONFIG=$tmp/mf.conf mf-lists --print-config check"; check_grep 'MF_CONFIG names the file' "$tmp/out" "^lists\\.dir +$tmp/file"
printf 'lock-timeout 3s\nlists.lock-timeout 1s\n' >"$tmp/sec.conf"
run "mf-lists --config $tmp/sec.conf --print-config check"; check_grep "own section beats a global key" "$tmp/out" '^lock-timeout +1s +# .*sec\.conf:2$'

bad() { # bad DESC FILE-LINE PATTERN CONF
	printf "$4" >"$tmp/bad.conf"
	check_refused "$1" "$tmp/bad.conf:$2: .*$3" "mf-lists --config $tmp/bad.conf --list $top/etc/lists/10-local.list check --client 127.0.0.1 <$msg/plain.eml"
}
bad 'unknown key' 3 'unknown key "lists.dri"' '# x\nlists.dir /tmp\nlists.dri /etc\n'
bad 'unknown global key' 1 'unknown key "stat-dir"' 'stat-dir /tmp\n'
bad 'bad duration' 2 'lock-timeout' 'syslog false\nlock-timeout soon\n'
bad 'bad enum value' 1 'output.*not one of' 'lists.output everything\n'
bad 'key given twice' 4 'already set at line 1' 'lists.dir /a\n\n\nlists.dir /b\n'
bad "a command's key needs its section" 2 'unknown key "dir".*lists\.dir' 'syslog # on\ndir /etc/mf/lists\n'
bad 'envelope flags are not config keys' 1 'unknown key "lists.from"' 'lists.from a@b\n'
run "mf-lists --config $tmp/none.conf --print-config"
[ "$rc" = 75 ] && grep -q 'none.conf' "$tmp/err" && ok 'a named config file that is missing is an error' || not_ok 'a named config file that is missing is an error' "exit $rc" "$(cat "$tmp/err")"
printf 'lists.list %s\nlists.list %s\n' "$top/etc/lists/20-block-clients.list" "$top/etc/lists/10-local.list" >"$tmp/rep.conf"
check_exit 'a repeated key gives several values, in order' 100 "mf-lists --config $tmp/rep.conf check --client 192.0.2.1 <$msg/plain.eml"
printf 'lists.dir\t%s\n' "$top/etc/lists" >"$tmp/tab.conf"
check_exit 'a tab separates key and value too' 99 "mf-lists --config $tmp/tab.conf check --client 127.0.0.1 <$msg/plain.eml"
printf 'syslog # a comment after a bare key\nlists.dir %s\n' "$top/etc/lists" >"$tmp/c.conf"
check_exit 'a comment after a bare key' 0 "mf-lists --config $tmp/c.conf --print-config check"
check_grep '... leaves the key true' "$tmp/out" '^syslog +true +# .*c\.conf:1$'
done_testing
