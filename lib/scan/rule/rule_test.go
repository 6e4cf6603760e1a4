package rule

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"mf/lib/mime"
	"mf/lib/scan/outcome"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"zap body /x/", `t.rules:1: unknown outcome "zap"`},
		{"reject", "t.rules:1: no target"},
		{"reject color red", `t.rules:1: unknown target "color"`},
		{"reject body", "t.rules:1: body: no pattern"},
		{"reject body plain", "t.rules:1: body: want a /regexp/"},
		{"reject body /(/", "t.rules:1: pattern /(/: error parsing regexp"},
		{"reject body /x", "t.rules:1: a /pattern/ without its closing /"},
		{"reject body /x/q", "t.rules:1: a /pattern/ without its closing /"},
		{"reject size 10M", "t.rules:1: size: want >SIZE"},
		{"reject size >ten", `t.rules:1: size: bad size "ten"`},
		{"reject filename [", `t.rules:1: bad pattern "["`},
		{"reject filename *.exe color=red", `t.rules:1: unknown option "color"`},
		{"reject filename *.exe reply=\"451 4.7.1 Later\"", "t.rules:1: reject needs a 5xx reply"},
		{"tag header: /x/", `t.rules:1: bad header name ""`},
		{"reject filename *.exe block=client:bad/list:1h", "t.rules:1: block"},
		{"reject filename *.exe block=host:x:1h", "t.rules:1: block"},
		{"reject filename *.exe reply=\"550 unterminated", "t.rules:1: options"},
	} {
		_, err := Parse(strings.NewReader("# comment\n\n"[:0]+c.in+"\n"), "t.rules")
		if err == nil || !strings.HasPrefix(err.Error(), c.err) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.err)
		}
	}
	_, err := Parse(strings.NewReader("# ok\nreject filename *.exe\n\ntag body /(/\n"), "f")
	if err == nil || !strings.HasPrefix(err.Error(), "f:4: ") {
		t.Errorf("line number: %v", err)
	}
}

func TestParse(t *testing.T) {
	rs, err := Parse(strings.NewReader(`
reject     filename  *.EXE   reply="550 5.7.1 No executables here" name=exe
tag        header:subject /viagra/i subject="[SPAM] " header="X-Rule: pills"
quarantine body /wire (the )?money/ block=sender:scam:6h
tempfail   size >10K
`), "t.rules")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d rules", len(rs))
	}
	if rs[0].Name != "exe" || rs[0].Action != outcome.Reject || rs[0].Reply.Text != "No executables here" || rs[0].glob != "*.exe" {
		t.Errorf("rule 1 %+v", rs[0])
	}
	if rs[1].Field != "Subject" || rs[1].Subject != "[SPAM] " || rs[1].Headers[0] != "X-Rule: pills" || rs[1].Name != "t.rules:3" {
		t.Errorf("rule 2 %+v", rs[1])
	}
	if rs[2].Block.Target != "sender" || rs[2].Block.List != "scam" || rs[2].Block.For.Hours() != 6 {
		t.Errorf("rule 3 %+v", rs[2].Block)
	}
	if rs[3].size != 10<<10 {
		t.Errorf("rule 4 size %d", rs[3].size)
	}
}

func walk(t *testing.T, msg string) *mime.Result {
	r, err := mime.Walk(strings.NewReader(msg), mime.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func names(hs []Hit) string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Rule.Name)
	}
	return strings.Join(n, " ")
}

func TestMatch(t *testing.T) {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("invoice.pdf.exe")
	w.Write([]byte("MZ"))
	zw.Close()
	msg := "From: a@example.org\nSubject: =?utf-8?q?V=C3=8DAGRA?= offer\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n" +
		"--B\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nPlease wire the m=F6ney\n" +
		"--B\nContent-Type: application/octet-stream; name=\"doc.zip\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"doc.zip\"\n\n" +
		base64.StdEncoding.EncodeToString(zb.Bytes()) + "\n--B--\n"
	rs, err := Parse(strings.NewReader(`
tag header:Subject /ÍAGRA/ name=subject
tag header /^From: .*@example\.org$/ name=from
tag body /wire the möney/ name=body
tag body /doc\.zip/ name=no-body-in-attachments
tag filename *.zip name=filename
tag declared-type application/octet-stream name=declared
tag type application/zip name=detected
tag type image/* name=no-image
tag zip-name *.exe name=zip
tag zip-name /\.pdf\.exe$/ name=zip-re
tag size >100000 name=no-size
tag message-size >100 name=msize
`), "t.rules")
	if err != nil {
		t.Fatal(err)
	}
	got := names(Match(rs, walk(t, msg), int64(len(msg))))
	if got != "subject from body filename declared detected zip zip-re msize" {
		t.Errorf("hits %q", got)
	}
}

// On real messages from the shared corpora.
func TestSharedMessages(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile("../../../../shared/data/" + p)
		if err != nil {
			t.Skipf("shared data: %v", err)
		}
		return string(b)
	}
	rs, err := Parse(strings.NewReader(`
reject filename *.doc name=doc
reject declared-type application/msword name=msword
tag type text/html name=html-inside
reject filename /\.zip$/i name=zipname
tag body /A text section/ name=text
`), "t.rules")
	if err != nil {
		t.Fatal(err)
	}
	msg := read("enmime/testdata/mail/attachment-application.raw")
	if got := names(Match(rs, walk(t, msg), int64(len(msg)))); got != "doc msword html-inside text" {
		t.Errorf("attachment-application: %q", got)
	}
	msg = read("enmime/testdata/low-quality/unk-charset-part.raw")
	if got := names(Match(rs, walk(t, msg), int64(len(msg)))); got != "html-inside zipname text" {
		t.Errorf("unk-charset-part: %q", got)
	}
}

// FuzzParseLine: any line is a rule or an error, never a panic; a rule
// has an outcome and a target.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`reject filename *.exe reply="550 5.7.1 No"`, `tag header:Subject /x/i subject="[S] "`,
		`quarantine body /a\/b/ block=client:x:1h`, `tempfail size >10M`, `reject zip-name /(/`,
		`discard message-size >1G name=big`, `reject body /x/ header="X: y" header="Z: w"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseLine(line)
		if err == nil && (r.Target == "" || r.Pattern == "") {
			t.Fatalf("%q: rule without target or pattern: %+v", line, r)
		}
	})
}
