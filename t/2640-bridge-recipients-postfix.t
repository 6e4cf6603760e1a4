#!/bin/sh
# Many recipients over SMTP: behind a real private Postfix, a transaction
# with 1000 recipients of 170 bytes, or 70 of 2000, still runs a stage
# with on-error=accept (exec would have refused its environment, and the
# stage been skipped: the message delivered unscanned).
. "$(dirname "$0")/lib.sh"
. "$top/t/postfix.sh"
need_postfix
cat >"$tmp/count" <<'SH'
#!/bin/sh
cat >/dev/null
echo "X-Rcpts: truncated=${RECIPIENTS_TRUNCATED:-0} count=$RECIPIENT_COUNT"
SH
chmod 755 "$tmp/count"
cat >"$tmp/mf.conf" <<CONF
bridge.stage count data input=message output=headers on-error=accept -- $tmp/count
bridge.stage refuse data input=message output=exit on-error=accept 0=reject 1=continue reply="550 5.7.1 Scanned and refused" -- grep -q "^Subject: REFUSE"
CONF
bridge_start "$tmp/mf.conf" --stage-user games || { not_ok 'mf-bridge listens'; done_testing; exit 1; }
pf_extra="smtpd_recipient_limit = 1000
line_length_limit = 4096" pf_start "$bridge_addr" || { not_ok 'postfix starts'; done_testing; exit 1; }

# smtp N SIZE SUBJECT: one SMTP transaction with N recipients of SIZE
# bytes (more than swaks can take on its command line), the server's
# replies on stdout ("<- CODE TEXT" each).
smtp() {
	perl -MNet::SMTP -e '
		my ($port, $n, $size, $subject) = @ARGV;
		my $s = Net::SMTP->new("127.0.0.1", Port => $port, Hello => "client.example.org", Timeout => 120) or die "connect: $!\n";
		my $say = sub { print "<- ", $s->code, " ", $s->message };
		$s->mail("s\@example.org"); $say->();
		my $ok = 0;
		for my $i (1 .. $n) {
			my $a = "r$i-"; $a .= "x" x ($size - length($a) - length("\@example.test"));
			$ok++ if $s->to("$a\@example.test");
		}
		print "<- accepted $ok recipients\n";
		$s->data("Subject: $subject\r\n\r\nbody\r\n"); $say->();
		$s->quit;
	' $pf_port "$@"
}
for s in 1000x170 70x2000; do
	smtp ${s%x*} ${s#*x} "REFUSE $s" >"$tmp/refuse-$s" 2>&1
	check_grep "$s: every recipient is taken" "$tmp/refuse-$s" "^<- accepted ${s%x*} recipients"
	check_grep "... and the stage with on-error=accept ran and refused" "$tmp/refuse-$s" '^<- 550 5\.7\.1 Scanned and refused'
done
n=$(pf_delivered)
smtp 1000 170 kept >"$tmp/kept" 2>&1
check_grep '1000x170: an accepted message is queued' "$tmp/kept" '^<- 250 2\.0\.0 Ok: queued'
pf_wait_delivered $((n + 1000))
m=$(pf_mail 'Subject: kept')
check_grep '... and the stage saw RECIPIENTS cut and all 1000 counted' "${m:-/dev/null}" '^X-Rcpts: truncated=1 count=1000$'
done_testing
