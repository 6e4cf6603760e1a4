package mime

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const shared = "../../../shared/data"

func walkString(t *testing.T, msg string) *Result {
	t.Helper()
	r, err := Walk(strings.NewReader(msg), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func file(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shared, name))
	if err != nil {
		t.Skipf("shared test data: %v", err)
	}
	return b
}

func TestAttachment(t *testing.T) {
	r, err := Walk(bytes.NewReader(file(t, "enmime/testdata/mail/attachment-application.raw")), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Parts) != 2 {
		t.Fatalf("%d parts, want 2", len(r.Parts))
	}
	p := r.Parts[1]
	if p.Path != "2" || p.Filename != "some.doc" || p.DeclaredType != "application/msword" || p.DetectedType != "text/html" || !p.Attachment() {
		t.Errorf("part 2 = %+v", p)
	}
	if string(r.Parts[0].Text) != "A text section" || r.Parts[0].Attachment() {
		t.Errorf("part 1 text %q", r.Parts[0].Text)
	}
	if r.Undecoded() {
		t.Errorf("problems %v", r.Problems)
	}
}

func TestUnknownCharsetNamed(t *testing.T) {
	r, _ := Walk(bytes.NewReader(file(t, "enmime/testdata/low-quality/unk-charset-part.raw")), DefaultLimits)
	if len(r.Problems) == 0 || !strings.HasPrefix(r.Problems[0], "1: ") || !strings.Contains(r.Problems[0], "fakescii") {
		t.Errorf("problems %q, want part 1 named with its charset", r.Problems)
	}
	if len(r.Parts) != 2 || string(r.Parts[0].Text) != "A text section" {
		t.Errorf("parts %+v: the raw text is still there", r.Parts)
	}
	// The attachment claims to be a zip and is not one.
	if !strings.Contains(strings.Join(r.Problems, "\n"), "2: zip") {
		t.Errorf("problems %q, want the bad zip named", r.Problems)
	}
}

func TestCharsetDecoded(t *testing.T) {
	msg := "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9 cr=E8me\n"
	r := walkString(t, msg)
	if got := string(r.Parts[0].Text); got != "café crème\n" {
		t.Errorf("text %q", got)
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for n, d := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(d)
	}
	zw.Close()
	return b.Bytes()
}

func withAttachment(name, ctype string, data []byte) string {
	return "Subject: a\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nsee attached\n--XX\n" +
		"Content-Type: " + ctype + "; name=\"" + name + "\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"" + name + "\"\n\n" +
		base64.StdEncoding.EncodeToString(data) + "\n--XX--\n"
}

func TestZipNames(t *testing.T) {
	inner := zipOf(t, map[string][]byte{"deep/evil.exe": []byte("MZ")})
	outer := zipOf(t, map[string][]byte{"readme.txt": []byte("hi"), "inner.zip": inner})
	r := walkString(t, withAttachment("files.dat", "application/octet-stream", outer))
	p := r.Parts[1]
	got := strings.Join(p.ZipNames, " ")
	for _, want := range []string{"readme.txt", "inner.zip", "inner.zip/deep/evil.exe"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("zip names %q lack %q", got, want)
		}
	}
	if p.DetectedType != "application/zip" {
		t.Errorf("detected %q", p.DetectedType)
	}
}

func TestZipLimits(t *testing.T) {
	// A zip bomb in miniature: a megabyte of zeros compresses ~1000 times.
	bomb := zipOf(t, map[string][]byte{"zeros.bin": make([]byte, 1<<20)})
	outer := zipOf(t, map[string][]byte{"bomb.zip": bomb})
	l := DefaultLimits
	l.ZipRatio = 10
	r, _ := Walk(strings.NewReader(withAttachment("a.zip", "application/zip", outer)), l)
	_ = r
	// bomb.zip itself is small; its ratio is fine: opened. The zeros
	// inside are not an archive and are not decompressed.
	if strings.Contains(strings.Join(r.Parts[1].ZipNames, " "), "zeros.bin") == false {
		t.Errorf("names %q", r.Parts[1].ZipNames)
	}
	// Nesting past ZipDepth is named, not followed.
	z := zipOf(t, map[string][]byte{"x.txt": nil})
	for i := 0; i < 5; i++ {
		z = zipOf(t, map[string][]byte{"n.zip": z})
	}
	r = walkString(t, withAttachment("n.zip", "application/zip", z))
	if !strings.Contains(strings.Join(r.Problems, "\n"), "nested deeper than 3") {
		t.Errorf("problems %q", r.Problems)
	}
	l = DefaultLimits
	l.ZipEntries = 3
	many := zipOf(t, map[string][]byte{"1": nil, "2": nil, "3": nil, "4": nil, "5": nil})
	r, _ = Walk(strings.NewReader(withAttachment("m.zip", "application/zip", many)), l)
	if len(r.Parts[1].ZipNames) != 3 || !strings.Contains(strings.Join(r.Problems, "\n"), "more than 3 names") {
		t.Errorf("names %q problems %q", r.Parts[1].ZipNames, r.Problems)
	}
}

func TestRFC822Inside(t *testing.T) {
	r, err := Walk(bytes.NewReader(file(t, "cpython-test_email/msg_06.txt")), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Parts) != 1 || r.Parts[0].DeclaredType != "text/plain" {
		t.Errorf("message/rfc822 not walked into: %+v", r.Parts)
	}
}

func TestLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=B\n\n")
	for i := 0; i < 20; i++ {
		b.WriteString("--B\nContent-Type: text/plain\n\npart\n")
	}
	b.WriteString("--B--\n")
	l := DefaultLimits
	l.MaxParts = 5
	r, _ := Walk(strings.NewReader(b.String()), l)
	if len(r.Parts) != 5 || !r.Undecoded() {
		t.Errorf("%d parts, problems %q", len(r.Parts), r.Problems)
	}
	var d strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&d, "Content-Type: multipart/mixed; boundary=B%d\n\n--B%d\n", i, i)
	}
	d.WriteString("\nx\n")
	r = walkString(t, d.String())
	if !strings.Contains(strings.Join(r.Problems, "\n"), "nested deeper") {
		t.Errorf("problems %q", r.Problems)
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	if _, err := Walk(failReader{}, DefaultLimits); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("err %v", err)
	}
}

// TestSharedData walks every message of the shared corpora, the
// malformed ones above all: a result, never a panic or an error.
func TestSharedData(t *testing.T) {
	n := 0
	for _, dir := range []string{"enmime", "james-mime4j", "cpython-test_email", "docker-mailserver", "milter-manager-test-mails", "spamassassin", "chasquid", "mox", "rspamd"} {
		filepath.WalkDir(filepath.Join(shared, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil || len(b) > 4<<20 {
				return nil
			}
			n++
			if _, err := Walk(bytes.NewReader(b), DefaultLimits); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			return nil
		})
	}
	if n == 0 {
		t.Skip("no shared test data")
	}
	t.Logf("%d files walked", n)
}
