package maillog

import (
	"encoding/json"
	"time"
)

// Record is one mf-bridge decision record, as the bridge writes it: one
// JSON object per line (see mf-stat(1), DECISION RECORDS).
type Record struct {
	Time       string   `json:"time"`
	Host       string   `json:"host"`
	QueueID    string   `json:"queue_id"`
	Phase      string   `json:"phase"`
	ClientAddr string   `json:"client_addr"`
	ClientName string   `json:"client_name"`
	Helo       string   `json:"helo"`
	AuthUser   string   `json:"auth_user"`
	MailFrom   *string  `json:"mail_from"`
	Rcpts      []string `json:"rcpts"`
	Size       int64    `json:"size"`
	Stages     []Stage  `json:"stages"`
	Action     string   `json:"action"`
	Reply      string   `json:"reply"`
	MS         float64  `json:"ms"`
}

// Stage is what one stage of the chain did.
type Stage struct {
	Name   string  `json:"name"`
	Phase  string  `json:"phase"`
	Action string  `json:"action"`
	Exit   int     `json:"exit"`
	MS     float64 `json:"ms"`
	Reply  string  `json:"reply"`
	Error  string  `json:"error"`
}

var recordActions = map[string]bool{"accept": true, "reject": true, "tempfail": true, "discard": true, "quarantine": true}

// parseRecord reads a decision record; a line that is not one (bad JSON,
// no time, no phase, an unknown action) is unparsed.
func parseRecord(line []byte, ev *Event) Result {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil || r.Phase == "" || !recordActions[r.Action] {
		return Unparsed
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return Unparsed
	}
	ev.Kind = Verdict
	ev.MTA = Bridge
	ev.Time = t
	ev.Host = []byte(r.Host)
	ev.QID = []byte(r.QueueID)
	ev.Record = &r
	return HasEvent
}
