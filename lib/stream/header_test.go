package stream

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// prependAll reads the header, prepends fields and copies the rest, as a
// stage adding header fields does.
func prependAll(t testing.TB, msg []byte, fields []string) (*Header, []byte) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(msg), 64<<10)
	h, err := ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(h.Prepend(fields))
	if _, err := io.Copy(&out, br); err != nil {
		t.Fatal(err)
	}
	return h, out.Bytes()
}

func TestPrependKeepsEveryByte(t *testing.T) {
	fields := []string{"X-Mf-List: 50-tag-partners", "X-Mf-Scan: clean"}
	for name, msg := range messages(t) {
		h, got := prependAll(t, msg, fields)
		i := bytes.IndexByte(msg, '\n')
		crlf := i > 0 && msg[i-1] == '\r'
		if h.CRLF != crlf {
			t.Errorf("%s: CRLF = %v, want %v", name, h.CRLF, crlf)
		}
		nl := "\n"
		if crlf {
			nl = "\r\n"
		}
		want := "X-Mf-List: 50-tag-partners" + nl + "X-Mf-Scan: clean" + nl + string(msg)
		if string(got) != want {
			t.Errorf("%s: prepended message differs from fields + original", name)
		}
		if !bytes.HasPrefix(msg, h.Raw) {
			t.Errorf("%s: Raw is not the start of the message", name)
		}
		_, same := prependAll(t, msg, nil)
		if !bytes.Equal(same, msg) {
			t.Errorf("%s: Prepend(nil) changed the message", name)
		}
	}
}

func TestReadHeaderFields(t *testing.T) {
	msgs := messages(t)
	for _, tt := range []struct{ file, key, want string }{
		{"sa-sample-nonspam.eml", "Return-Path", "<tbtf-approval@world.std.com>"},
		{"mm-folded-from-crlf.eml", "Date", "Wed, 5 Nov 2008 11:41:54 -0200"},
		{"enmime-html-mime-inline-crlf.eml", "From", "James Hillyerd <james@makita.skynet>"},
	} {
		br := bufio.NewReader(bytes.NewReader(msgs[tt.file]))
		h, err := ReadHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Fields.Get(tt.key); got != tt.want {
			t.Errorf("%s: %s = %q, want %q", tt.file, tt.key, got, tt.want)
		}
		// The header ends with its blank line, the body is left.
		if !bytes.HasSuffix(h.Raw, []byte("\n\n")) && !bytes.HasSuffix(h.Raw, []byte("\r\n\r\n")) {
			t.Errorf("%s: Raw does not end with the blank line: %q", tt.file, h.Raw[max(0, len(h.Raw)-20):])
		}
	}
}

func TestPrependOddMessages(t *testing.T) {
	for _, tt := range []struct{ name, msg, want string }{
		{"empty", "", "X-A: 1\n\n"},
		{"no header", "\nbody\n", "X-A: 1\n\nbody\n"},
		{"no header CRLF", "\r\nbody\r\n", "X-A: 1\r\n\r\nbody\r\n"},
		{"header only", "Subject: x\n", "X-A: 1\nSubject: x\n"},
		{"no newline at all", "Subject: x", "X-A: 1\nSubject: x"},
		{"mixed endings, CRLF first", "Subject: x\r\nFrom: y\n\nbody", "X-A: 1\r\nSubject: x\r\nFrom: y\n\nbody"},
		{"mixed endings, LF first", "Subject: x\nFrom: y\r\n\r\nbody", "X-A: 1\nSubject: x\nFrom: y\r\n\r\nbody"},
		{"bare CR", "Subject: x\rFrom: y\n\nb", "X-A: 1\nSubject: x\rFrom: y\n\nb"},
		{"garbage", "\x00\xff\xfe:\n\n", "X-A: 1\n\x00\xff\xfe:\n\n"},
	} {
		_, got := prependAll(t, []byte(tt.msg), []string{"X-A: 1"})
		if string(got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReadHeaderStopsAtMaxHeader(t *testing.T) {
	// A header with no end: the stage looks at MaxHeader bytes of it, and
	// the rest still passes through.
	line := "X-Junk: " + strings.Repeat("j", 990) + "\r\n"
	msg := []byte(strings.Repeat(line, 2*MaxHeader/len(line)) + "\r\nbody\r\n")
	br := bufio.NewReaderSize(bytes.NewReader(msg), 64<<10)
	h, err := ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Raw) < MaxHeader || len(h.Raw) > MaxHeader+64<<10 {
		t.Errorf("ReadHeader read %d bytes, want about %d", len(h.Raw), MaxHeader)
	}
	if !h.CRLF {
		t.Error("CRLF not detected")
	}
	var out bytes.Buffer
	out.Write(h.Prepend([]string{"X-A: 1"}))
	io.Copy(&out, br)
	if out.String() != "X-A: 1\r\n"+string(msg) {
		t.Error("bytes lost past MaxHeader")
	}
}

// A stranger's endless header is read no further than MaxHeader; the
// rest stays for the caller, as body.
func TestSplitHeaderBounded(t *testing.T) {
	msg := "Subject: " + strings.Repeat("x", 3*MaxHeader) + "\n\nbody\n"
	br := bufio.NewReader(strings.NewReader(msg))
	head, first, err := SplitHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	if len(head) > MaxHeader+64<<10 || first != nil {
		t.Errorf("head of %d bytes, first %q", len(head), first)
	}
	rest, _ := io.ReadAll(br)
	if string(head[:len(head)-1])+string(rest) != msg {
		t.Error("bytes lost")
	}
}
