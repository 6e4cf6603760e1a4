# Sourced by each t/*.t: a scratch directory, the built binaries first on
# PATH, no site configuration, and check functions that speak TAP
# (ok N - DESC, not ok N - DESC, # SKIP), closed by done_testing's plan,
# for prove(1).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=$top/bin:$PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mf-t.XXXXXX")
# at_exit CMD: CMD runs when the test exits, the last one added first,
# then the scratch directory goes. One trap for all, so that a helper
# that starts a server cannot undo the cleanup of another.
exits=
at_exit() { exits="$1; $exits"; }
trap 'eval "$exits"; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
msg=$top/t/msg
: >"$tmp/empty.conf"
export MF_CONFIG="$tmp/empty.conf" MF_STATE_DIR="$tmp/state"
unset SENDER RECIPIENT TCPREMOTEIP TCPREMOTEHOST MF_DIR MF_LIST 2>/dev/null
# The count is kept in a file, so checks made in a subshell (a pipe,
# a loop reading one) count too.
: >"$tmp/.tap"
tap() { echo "$1" >>"$tmp/.tap"; tap_n=$(wc -l <"$tmp/.tap"); }
ok() { tap ok; printf 'ok %d - %s\n' "$tap_n" "$1"; }
not_ok() {
	tap fail; printf 'not ok %d - %s\n' "$tap_n" "$1"; shift
	for l in "$@"; do printf '%s\n' "$l" | head -20 | sed 's/^/#\t/'; done
}

# log_tail SAYS FILE: SAYS and the last lines of FILE as TAP comments,
# which prove --comments shows, for a server that did not start.
log_tail() { echo "# $1:"; tail -5 "$2" | sed 's/^/# /'; }

# skip DESC REASON: DESC was not checked, and REASON says why.
skip() { tap skip; printf 'ok %d - %s # SKIP %s\n' "$tap_n" "$1" "$2"; }

# need PROGRAM PACKAGE: whether PROGRAM is installed. When it is not,
# the caller skips; under CI=true that is a failure (t/deps installs it).
need() {
	command -v "$1" >/dev/null && return 0
	if [ -n "${CI:-}" ]; then not_ok "$1 installed" "missing: apt-get install $2 (t/deps)"; fi
	return 1
}

# run CMD: runs the shell command line CMD; stdout in $tmp/out, stderr
# in $tmp/err, exit status in $rc.
run() { sh -c "$1" >"$tmp/out" 2>"$tmp/err"; rc=$?; }

# status NAME: the exit status a verdict or outcome name stands for
# (continue 0, accept 99, reject 100, tempfail 111, error 75); a number
# stands for itself.
status() {
	case $1 in
	continue) echo 0 ;; accept) echo 99 ;; reject) echo 100 ;;
	tempfail) echo 111 ;; error) echo 75 ;; *) echo "$1" ;;
	esac
}

# check_status DESC WANT CMD: CMD exits with WANT, a verdict name
# (continue, accept, reject, tempfail, error) or a number.
check_status() {
	run "$3"
	want=$(status "$2")
	if [ "$rc" = "$want" ]; then ok "$1"; else not_ok "$1" "exit $rc, want $2 ($want)" "$(head -3 "$tmp/err")"; fi
}
check_exit() { check_status "$@"; }

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
	echo "1..$(wc -l <"$tmp/.tap")"
	! grep -qx fail "$tmp/.tap"
}
