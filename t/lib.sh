# Sourced by each t/*.t: a scratch directory, the built binaries first on
# PATH, no site configuration, and check functions that count.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$top/bin:$PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mf-t.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
msg=$top/t/msg
: >"$tmp/empty.conf"
export MF_CONFIG="$tmp/empty.conf" MF_STATE_DIR="$tmp/state"
unset SENDER RECIPIENT TCPREMOTEIP TCPREMOTEHOST MF_DIR MF_LIST 2>/dev/null
passed=0 failed=0

ok() { passed=$((passed + 1)); printf 'ok %s\n' "$1"; }
not_ok() {
	failed=$((failed + 1)); printf 'not ok %s\n' "$1"; shift
	for l in "$@"; do printf '#\t%s\n' "$l"; done
}

# run CMD: runs the shell command line CMD; stdout in $tmp/out, stderr
# in $tmp/err, exit status in $rc.
run() { sh -c "$1" >"$tmp/out" 2>"$tmp/err"; rc=$?; }

# check_exit DESC WANT CMD: CMD exits with WANT.
check_exit() {
	run "$3"
	if [ "$rc" = "$2" ]; then ok "$1"; else not_ok "$1" "exit $rc, want $2" "$(head -3 "$tmp/err")"; fi
}

# check_out DESC WANT CMD: CMD prints exactly WANT (trailing newlines aside).
check_out() {
	run "$3"
	got=$(cat "$tmp/out")
	if [ "$got" = "$2" ]; then ok "$1"; else not_ok "$1" "got:" "$got" "want:" "$2" "$(head -3 "$tmp/err")"; fi
}

# check_grep DESC FILE PATTERN: FILE ($tmp/out, $tmp/err) has a line
# matching the extended regular expression PATTERN.
check_grep() {
	if grep -Eq -- "$3" "$2"; then ok "$1"; else not_ok "$1" "no line matches /$3/ in:" "$(head -5 "$2")"; fi
}

# check_nogrep DESC FILE PATTERN: no line of FILE matches.
check_nogrep() {
	if grep -Eq -- "$3" "$2"; then not_ok "$1" "a line matches /$3/:" "$(grep -E -- "$3" "$2" | head -3)"; else ok "$1"; fi
}

# check_refused DESC PATTERN CMD: CMD exits 75, writes nothing on
# stdout, and says on stderr what matches the extended regular
# expression PATTERN: bad input is an error, never a guess.
check_refused() {
	run "$3"
	if [ "$rc" = 75 ] && [ ! -s "$tmp/out" ] && grep -Eq -- "$2" "$tmp/err"; then ok "$1"
	else not_ok "$1" "exit $rc (want 75), stdout $(wc -c <"$tmp/out") bytes" "$(cat "$tmp/err")"; fi
}

# check DESC CMD: CMD succeeds.
check() { check_exit "$1" 0 "$2"; }

done_testing() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}
