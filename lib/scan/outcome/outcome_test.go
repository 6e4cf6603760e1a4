package outcome

import (
	"testing"
	"time"
)

func TestBlock(t *testing.T) {
	b, err := ParseBlock("client:virus-hosts:6h")
	if err != nil || b.Target != "client" || b.List != "virus-hosts" || b.For != 6*time.Hour || b.String() != "client:virus-hosts:6h0m0s" {
		t.Errorf("%+v %v", b, err)
	}
	if b, err := ParseBlock("sender:scam"); err != nil || b.For != 0 {
		t.Errorf("%+v %v", b, err)
	}
	for _, s := range []string{"", "client", "host:x:1h", "client:bad/list:1h", "client:x:soon", "client:x:-1h", "client:x:1h:2"} {
		if _, err := ParseBlock(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestVerdictAndWeight(t *testing.T) {
	var o Outcome
	if _, err := o.Option("reply", "551 5.7.1 Go away"); err != nil {
		t.Fatal(err)
	}
	o.Action = Tempfail
	if o.Check() == nil {
		t.Error("a 5xx reply for tempfail accepted")
	}
	o.Action = Reject
	if o.Check() != nil || o.Verdict().String() != "reject 551 5.7.1 Go away" {
		t.Errorf("verdict %s", o.Verdict())
	}
	if (&Outcome{Action: Quarantine}).Verdict().String() != "quarantine held by content scan" {
		t.Error("quarantine reason")
	}
	if (&Outcome{Action: Tag}).Verdict().Action.Final() {
		t.Error("tag is final")
	}
	if !Heavier(&Outcome{Action: Reject}, &Outcome{Action: Discard}) || Heavier(&Outcome{Action: Tag}, &Outcome{Action: Quarantine}) || !Heavier(&Outcome{}, nil) {
		t.Error("weights")
	}
	if _, err := o.Option("header", "no colon"); err == nil {
		t.Error("bad header accepted")
	}
}
