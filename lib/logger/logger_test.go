package logger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// In JSON one diagnostic is one object on one line, a stranger's bytes
// included.
func TestJSON(t *testing.T) {
	var b bytes.Buffer
	l := New("mf-lists", &b)
	l.SetJSON(true)
	l.now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	l.Infof("reject: sender %s", "a\n\"b\"@x")
	var got map[string]string
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("not one JSON line: %q (%v)", b.String(), err)
	}
	want := map[string]string{"time": "2026-12-01T00:00:00.000000Z", "prog": "mf-lists", "level": "info", "msg": `reject: sender a?"b"@x`}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
