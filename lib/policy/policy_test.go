package policy

import (
	"errors"
	"io"
	"strings"
	"testing"
)

const req1 = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.1\nclient_name=unknown\nhelo_name=client.example.test\nsender=a@example.org\nrecipient=b@example.net\nsize=0\n\n"

func TestReadMany(t *testing.T) {
	rd := NewReader(strings.NewReader(req1 + strings.ReplaceAll(req1, "RCPT", "DATA")))
	r, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	if r.Get("protocol_state") != "RCPT" || r.Get("client_address") != "192.0.2.1" || r.Get("recipient") != "b@example.net" || r.Get("missing") != "" {
		t.Fatalf("attrs %v", r.Attrs)
	}
	if r.Names[0] != "request" || len(r.Names) != 9 {
		t.Fatalf("names %v", r.Names)
	}
	r, err = rd.Read()
	if err != nil || r.Get("protocol_state") != "DATA" {
		t.Fatalf("second: %v %v", err, r)
	}
	if _, err := rd.Read(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, in := range []string{
		"\n",
		"request=smtpd_access_policy\nnoequals\n\n",
		"request=other\n\n",
		"client_address=1.2.3.4\n\n",
		"=x\nrequest=smtpd_access_policy\n\n",
		"request=smtpd_access_policy\n" + strings.Repeat("x=", MaxLine) + "\n\n",
		"request=smtpd_access_policy\n" + strings.Repeat("a=b\n", MaxAttributes+1) + "\n",
		"request=smtpd_access_policy\nx=a\x00b\n\n",
	} {
		_, err := NewReader(strings.NewReader(in)).Read()
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%q: %v, want a format error", clip(in), err)
		}
	}
	if _, err := NewReader(strings.NewReader("request=smtpd_access_policy\nsender=a")).Read(); err != io.ErrUnexpectedEOF {
		t.Errorf("cut short: %v", err)
	}
}

func TestCRLFAndDuplicates(t *testing.T) {
	r, err := NewReader(strings.NewReader("request=smtpd_access_policy\r\nsender=a\r\nsender=b\r\nx=\r\n\r\n")).Read()
	if err != nil || r.Get("sender") != "b" || len(r.Names) != 3 {
		t.Fatalf("%v %v", err, r)
	}
}

func TestAnswerLine(t *testing.T) {
	for _, tc := range []struct {
		a    Answer
		want string
	}{
		{Answer{Action: Dunno}, "action=DUNNO\n\n"},
		{Answer{Action: Reject, Text: "5.7.1 Client blocked"}, "action=REJECT 5.7.1 Client blocked\n\n"},
		{Answer{Action: "450", Text: "4.7.1 wait\n\naction=OK"}, "action=450 4.7.1 wait  action=OK\n\n"},
	} {
		if got := tc.a.Line(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.a, got, tc.want)
		}
	}
}
