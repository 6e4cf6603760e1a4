#!/bin/sh
# mf-scan's content rules and program engines on real messages from
# ../shared/data: attachment names and types (declared and detected),
# names inside zips, encoded bodies and charsets, headers; program
# engines' exit codes, header lines, timeout and size cap; bad
# configuration refused with file:line. No scanner server is needed.
. "$(dirname "$0")/lib.sh"
data=$top/../shared/data
[ -d "$data" ] || data=/work/shared/data
en=$data/enmime/testdata
mm=$data/milter-manager-test-mails/normal

conf() { { echo "state-dir $tmp/state"; echo "scan.rules $tmp/r.rules"; cat; } >"$tmp/mf.conf"; }
rules() { cat >"$tmp/r.rules"; conf </dev/null; }
S="mf-scan -c $tmp/mf.conf check"

rules <<'R'
reject filename *.doc name=no-doc reply="550 5.7.1 Word documents are not accepted here"
R
check_status 'a file name rule rejects' reject "$S --output stream <$en/mail/attachment-application.raw"
check_grep '... with its reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Word documents are not accepted here$'
check_grep '... the trace names the rule' "$tmp/out" '^Mf-Trace: mf-scan reject by=rule:no-doc rules=1 '
check_grep '... the log says where it is and what matched' "$tmp/err" "reject: rule no-doc \\($tmp/r\\.rules:1\\): filename part 2 some\\.doc"
check_status '... mail without one passes' continue "$S <$en/mail/mime-mixed.raw"

rules <<'R'
quarantine declared-type application/msword name=msword
R
check_status 'a declared type rule' accept "$S --output stream <$en/mail/attachment-application.raw"
check_grep '... quarantines' "$tmp/out" '^Mf-Verdict: quarantine held by content scan$'
rules <<'R'
tag type text/html name=html header="X-Rule: disguised html"
R
check_status 'a detected type rule: some.doc holds HTML' continue "$S --output message <$en/mail/attachment-application.raw"
check_grep '... tags' "$tmp/out" '^X-Rule: disguised html$'
check_grep '... and the result field names the rule' "$tmp/out" '^X-Mf-Scan: tag by rule:html; rules=html$'

rules <<'R'
tag type image/gif name=gif header="X-Gif: yes"
tag filename *.GIF name=gifname header="X-Gif-Name: yes"
R
check_status 'the GIF of a Japanese mobile mail' continue "$S --output message <$mm/decomail/au-iso-2022-jp.eml"
check_grep '... detected as image/gif' "$tmp/out" '^X-Gif: yes[[:space:]]*$'
check_grep '... and named *.gif (any case)' "$tmp/out" '^X-Gif-Name: yes[[:space:]]*$'

rules <<'R'
tag body /パンダ/ name=panda header="X-Panda: found"
tag header:Subject /でこめ/ name=subject header="X-Subject: decoded"
R
check_status 'body and header rules through iso-2022-jp' continue "$S --output message <$mm/decomail/au-iso-2022-jp.eml"
check_grep '... the body decoded' "$tmp/out" '^X-Panda: found[[:space:]]*$'
check_grep '... the RFC 2047 Subject decoded' "$tmp/out" '^X-Subject: decoded[[:space:]]*$'

# Bodies behind quoted-printable and base64, in Latin-1.
{ printf 'Subject: qp\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nVisit our caf=E9 and wire=\n the money\n'; } >"$tmp/qp.eml"
{ printf 'Subject: b64\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n'; printf 'Visit our caf\351 and wire the money\n' | base64; } >"$tmp/b64.eml"
rules <<'R'
reject body /café and wire the money/ name=scam
R
check_status 'a body rule through quoted-printable and Latin-1' reject "$S <$tmp/qp.eml"
check_status '... through base64 and Latin-1' reject "$S <$tmp/b64.eml"
check_status '... the raw bytes do not match, so plain text would not either' continue "$S <$msg/plain.eml"

# Names inside zip archives (and inside zips inside those).
printf 'MZ' >"$tmp/setup.exe"
perl -MIO::Compress::Zip=zip -e 'zip($ARGV[0] => $ARGV[1], Name => "invoice.pdf.exe") or die' "$tmp/setup.exe" "$tmp/inner.zip"
perl -MIO::Compress::Zip=zip -e 'zip($ARGV[0] => $ARGV[1], Name => "docs.zip") or die' "$tmp/inner.zip" "$tmp/outer.zip"
{ printf 'Subject: zip\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream; name=files.bin\nContent-Transfer-Encoding: base64\n\n'; base64 <"$tmp/outer.zip"; printf -- '--b--\n'; } >"$tmp/zip.eml"
rules <<'R'
reject zip-name *.exe name=zipped-exe
R
check_status 'an .exe two zips deep, the outer one not named .zip' reject "$S <$tmp/zip.eml"
check_grep '... found by its name' "$tmp/err" 'zip-name part 2 docs\.zip/invoice\.pdf\.exe'
check_status '... dry-run: not refused' continue "$S --dry-run <$tmp/zip.eml"
rules <<'R'
reject zip-name /^eicar\.com$/ name=eicar-name
reject size >1M name=huge-attachment
R
check_status 'docker-mailserver rspamd virus.txt: base64 zip, no header separator' continue "$S <$data/docker-mailserver/test/files/emails/rspamd/virus.txt"
check_grep '... named as undecoded, never a silent pass' "$tmp/err" 'undecoded: 1:'

# Parts that could not be decoded: named, and an outcome if wanted.
: >"$tmp/r.rules"
conf </dev/null
check_status 'an unknown charset: continues by default' continue "$S --output message <$en/low-quality/unk-charset-part.raw"
check_grep '... the part named' "$tmp/out" '^X-Mf-Scan-Undecoded: 1: .*fakescii'
echo 'scan.undecoded quarantine' >>"$tmp/mf.conf"
check_status 'scan.undecoded quarantine: held' accept "$S --output stream <$en/low-quality/unk-charset-part.raw"
check_grep '... by undecoded' "$tmp/out" '^Mf-Trace: mf-scan quarantine by=undecoded '
check_status '... a message that decodes is not' continue "$S <$en/mail/attachment-application.raw"

# Size.
awk 'BEGIN { printf "Subject: big\n\n"; for (i = 0; i < 30000; i++) print "a line of text of fifty bytes, give or take a few" }' >"$tmp/big.eml"
rules <<'R'
tempfail message-size >1M name=big reply="452 4.3.1 Too big for now"
R
check_status 'a message-size rule' tempfail "$S --output stream <$tmp/big.eml"
check_grep '... with its 4xx' "$tmp/out" '^Mf-Verdict: tempfail 452 4\.3\.1 Too big for now$'

rules <<'R'
discard header:Subject /^In One Ear$/ name=drop
R
check_status 'discard: exit 99' accept "$S --output stream <$en/mail/attachment-octet.raw"
check_grep '... Mf-Verdict: discard' "$tmp/out" '^Mf-Verdict: discard$'

# The heaviest outcome wins; every tag's fields go on.
rules <<'R'
tag filename *.doc header="X-One: 1"
quarantine declared-type application/msword
tag type text/html header="X-Two: 2"
R
check_status 'tag, quarantine, tag: quarantine wins' accept "$S --output message <$en/mail/attachment-application.raw"
check_grep '... the tags are still on' "$tmp/out" '^X-Two: 2$'

# Feedback from a rule: the sender this time.
rules <<'R'
reject body /wire the money/ block=sender:scammers:2h
R
check_status 'a rule with block=sender' reject "$S --from crook@scam.example <$tmp/qp.eml"
mkdir -p "$tmp/lists"
check_status '... mf-lists now refuses the sender' reject "mf-lists --dir $tmp/lists check --output none --client 192.0.2.1 --from crook@scam.example </dev/null"
check_status '... the null sender is never blocked' reject "$S --from '' <$tmp/qp.eml"
check_grep '... and it says so' "$tmp/err" 'feedback to scammers: no sender to block'

# Program engines: argv, no shell; exit codes mapped; header lines.
cat >"$tmp/filter.sh" <<'P'
#!/bin/sh
t=$(cat)
case $t in
*BADWORD*) echo "X-Censor: badword"; exit 2 ;;
*SLOWWORD*) sleep 5 ;;
*ODDWORD*) exit 7 ;;
*NOISE*) echo "this is not a header"; exit 0 ;;
esac
echo "X-Censor: clean"
echo "X-Censor-Sender: $SENDER"
P
chmod 755 "$tmp/filter.sh"
: >"$tmp/r.rules"
conf <<CONF
scan.engine censor program timeout=2s 2=reject reply="550 5.7.1 Watch your language" -- $tmp/filter.sh
CONF
check_status 'a program engine: exit 0 continues' continue "$S --output message --from a@example.org <$msg/plain.eml"
check_grep '... its header lines go on the message' "$tmp/out" '^X-Censor: clean$'
check_grep '... it sees the sender in $SENDER' "$tmp/out" '^X-Censor-Sender: a@example\.org$'
printf 'Subject: x\n\nsome BADWORD here\n' >"$tmp/bad.eml"
check_status '... exit 2=reject' reject "$S --output stream <$tmp/bad.eml"
check_grep '... with its reply' "$tmp/out" '^Mf-Verdict: reject 550 5\.7\.1 Watch your language$'
printf 'Subject: x\n\nsome ODDWORD here\n' >"$tmp/odd.eml"
check_refused '... an exit no option maps: exit 75' 'engine censor: exit 7, which no 7= option maps' "$S <$tmp/odd.eml"
printf 'Subject: x\n\nsome NOISE here\n' >"$tmp/noise.eml"
check_refused '... output that is not header lines: exit 75' 'not a header field' "$S <$tmp/noise.eml"
printf 'Subject: x\n\nsome SLOWWORD here\n' >"$tmp/slow.eml"
check_refused '... past its timeout: exit 75' 'engine censor: timed out after 2s' "$S <$tmp/slow.eml"
conf <<CONF
scan.engine censor program timeout=1s on-error=tempfail -- $tmp/filter.sh
CONF
check_status '... or its on-error' tempfail "$S <$tmp/slow.eml"
conf <<CONF
scan.engine censor program max-size=1K 2=reject -- $tmp/filter.sh
CONF
{ cat "$tmp/bad.eml"; cat "$tmp/big.eml"; } >"$tmp/bigbad.eml"
check_status '... over its max-size: not run' continue "$S --output message <$tmp/bigbad.eml"
check_grep '... and marked skipped' "$tmp/out" '^X-Mf-Scan: continue; censor=skipped [0-9]+ms; skipped=censor:size$'

# Bad configuration: refused, with file and line.
printf 'reject filename *.exe\n\nreject body /(/\n' >"$tmp/bad.rules"
printf 'state-dir %s\nscan.rules %s\n' "$tmp/state" "$tmp/bad.rules" >"$tmp/bad.conf"
check_refused 'a bad rule: file:line of the rule' "scan\\.rules: $tmp/bad\\.rules:3: pattern /\\(/: error parsing regexp" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'state-dir %s\n\nscan.engine av clamd\n' "$tmp/state" >"$tmp/bad.conf"
check_refused 'an engine without addr=' "$tmp/bad\\.conf:3: scan\\.engine: engine av: no addr=" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.engine av virustotal\n' >"$tmp/bad.conf"
check_refused 'an unknown kind' "$tmp/bad\\.conf:1: scan\\.engine: engine av: unknown kind \"virustotal\"" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.engine av clamd addr=unix:/x\nscan.engine av clamd addr=unix:/y\n' >"$tmp/bad.conf"
check_refused 'two engines of one name' "$tmp/bad\\.conf:2: scan\\.engine: an engine named av already exists" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.engine sa spamd addr=tcp:localhost:783 reject=lots\n' >"$tmp/bad.conf"
check_refused 'a bad score' "$tmp/bad\\.conf:1: scan\\.engine: engine sa: reject: want a score" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.engine av clamd addr=unix:/x on-virus=explode\n' >"$tmp/bad.conf"
check_refused 'a bad outcome' "$tmp/bad\\.conf:1: .*unknown outcome \"explode\"" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.engine p program -- relative/path\n' >"$tmp/bad.conf"
check_refused 'a program without its absolute path' "$tmp/bad\\.conf:1: .*give its absolute path" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
printf 'scan.cache-ttl soon\n' >"$tmp/bad.conf"
check_refused 'a bad cache-ttl' "$tmp/bad\\.conf:1: cache-ttl" "mf-scan -c $tmp/bad.conf check <$msg/plain.eml"
check_status 'no engine and no rule: everything continues' continue "mf-scan check <$msg/plain.eml"
check_status 'before data there is nothing to scan' continue "mf-scan -c $tmp/mf.conf check --phase rcpt --rcpt a@example.org </dev/null"
done_testing
