package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

func TestExportReader(t *testing.T) {
	var in bytes.Buffer
	in.WriteString("__CURSOR=s=1;i=1\n__REALTIME_TIMESTAMP=1700000000000000\n_HOSTNAME=mx\nSYSLOG_IDENTIFIER=postfix/smtpd\n_PID=42\nMESSAGE=connect from a[192.0.2.1]\n\n")
	// A value with a control byte goes as a binary field.
	msg := "bad\x01byte"
	in.WriteString("__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1700000001000000\nSYSLOG_IDENTIFIER=postfix/qmgr\nMESSAGE\n")
	binary.Write(&in, binary.LittleEndian, uint64(len(msg)))
	in.WriteString(msg + "\n\n")
	// Cut short: not read until it is whole.
	in.WriteString("__CURSOR=s=1;i=3\n__REALTIME_TIMESTAMP=17000")
	got, err := io.ReadAll(newExportReader(&in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"MESSAGE":"connect from a[192.0.2.1]","SYSLOG_IDENTIFIER":"postfix/smtpd","_HOSTNAME":"mx","__REALTIME_TIMESTAMP":"1700000000000000"}
{"MESSAGE":"bad\u0001byte","SYSLOG_IDENTIFIER":"postfix/qmgr","__REALTIME_TIMESTAMP":"1700000001000000"}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// A length past any sane field is an error, not an allocation.
	bad := "__CURSOR=x\nMESSAGE\n\xff\xff\xff\xff\xff\xff\xff\x7f"
	if _, err := io.ReadAll(newExportReader(strings.NewReader(bad))); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("huge field: %v", err)
	}
}

func FuzzExportReader(f *testing.F) {
	f.Add("__CURSOR=a\nMESSAGE=x\n\n")
	f.Add("__CURSOR=a\nMESSAGE\n\x03\x00\x00\x00\x00\x00\x00\x00abc\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		out, _ := io.ReadAll(newExportReader(strings.NewReader(s)))
		for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
			if len(out) > 0 && (len(line) == 0 || line[0] != '{') {
				t.Fatalf("not a JSON line: %q", line)
			}
		}
	})
}
