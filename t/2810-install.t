#!/bin/sh
# make install with DESTDIR, PREFIX and SYSCONFDIR: binaries and pages,
# the example configuration and lists where there are none (an edited
# file is kept), the unit with the installed paths, a logrotate snippet,
# bash completions; the installed configuration passes mf-bridge check.
. "$(dirname "$0")/lib.sh"
chmod 755 "$tmp"
root=$tmp/root
run "make -C $top install DESTDIR=$root PREFIX=/usr"
[ "$rc" = 0 ] && ok 'make install DESTDIR=... PREFIX=/usr' || not_ok 'make install DESTDIR=... PREFIX=/usr' "$(tail -5 "$tmp/err")"
for f in usr/bin/mf-bridge usr/bin/mf-stage-supervisor usr/bin/mf-lists usr/bin/mf-quota usr/bin/mf-stat usr/share/man/man8/mf-bridge.8 usr/share/man/man5/mf-config.5 \
	etc/mf/mf.conf etc/mf/lists/20-block-clients.list usr/lib/systemd/system/mf-bridge.service etc/logrotate.d/mf-bridge \
	usr/share/bash-completion/completions/mf-lists; do
	[ -s "$root/$f" ] && ok "installs /$f" || not_ok "installs /$f"
done
u=$root/usr/lib/systemd/system/mf-bridge.service
check_grep 'the unit starts the installed binary' "$u" '^ExecStart=/usr/bin/mf-bridge --config /etc/mf/mf\.conf milter '
check_grep '... checks the file before a reload' "$u" '^ExecReload=/usr/bin/mf-bridge --config /etc/mf/mf\.conf check$'
check_nogrep '... and names no /usr/local' "$u" '/usr/local'
check_grep '... makes the state and log directories' "$u" '^StateDirectory=mf$'
check_grep 'logrotate rotates the decision log' "$root/etc/logrotate.d/mf-bridge" '^/var/log/mf/decisions\.log \{'
check_grep 'bash completion asks the command' "$root/usr/share/bash-completion/completions/mf-lists" '^complete -C /usr/bin/mf-lists mf-lists$'
check_out '... which completes a sub-command' show "COMP_LINE='mf-lists sh' COMP_POINT=11 $root/usr/bin/mf-lists"
if need logrotate logrotate; then
	check 'logrotate -d reads the snippet' "logrotate -d $root/etc/logrotate.d/mf-bridge"
else skip 'logrotate -d reads the snippet' 'logrotate is not installed'; fi
if need systemd-analyze systemd; then
	run "systemd-analyze verify $u"
	check_nogrep 'systemd-analyze verify: no error in the unit' "$tmp/err" 'mf-bridge\.service:[0-9]+:'
else skip 'systemd-analyze verify: no error in the unit' 'systemd-analyze is not installed'; fi
run "$root/usr/bin/mf-lists --print-config"
check_grep 'the installed binaries read /etc/mf/mf.conf by default' "$tmp/out" '^lists\.dir '

# The installed configuration is good, as the stage user checks it.
mkdir "$tmp/state"; as=
if [ "$(id -u)" = 0 ]; then as="--user nobody --stage-user games"; chown games "$tmp/state"; fi
check_status 'the installed mf.conf passes mf-bridge check' 0 "PATH=$root/usr/bin:/usr/bin:/bin MF_STATE_DIR=$tmp/state $root/usr/bin/mf-bridge --config $root/etc/mf/mf.conf $as check"

# An edited configuration survives another install.
echo '# mine' >>"$root/etc/mf/mf.conf"
rm "$root/etc/mf/lists/50-tag-partners.list"
run "make -C $top install DESTDIR=$root PREFIX=/usr"
check_grep 'another install keeps an edited mf.conf' "$root/etc/mf/mf.conf" '^# mine$'
[ ! -e "$root/etc/mf/lists/50-tag-partners.list" ] && ok '... and the lists as they are' || not_ok '... and the lists as they are'

run "make -C $top install DESTDIR=$tmp/root2 PREFIX=/opt/mf SYSCONFDIR=/opt/mf/etc"
check_grep 'SYSCONFDIR: the unit names the configuration there' "$tmp/root2/opt/mf/lib/systemd/system/mf-bridge.service" '^ExecStart=/opt/mf/bin/mf-bridge --config /opt/mf/etc/mf/mf\.conf '
[ -s "$tmp/root2/opt/mf/etc/mf/mf.conf" ] && ok '... and puts it there' || not_ok '... and puts it there'
make -C "$top" all >/dev/null 2>&1 # the default paths again for the tests after this
done_testing
