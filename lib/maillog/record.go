package maillog

import (
	"encoding/json"
	"slices"
	"time"

	"mf/lib/decision"
)

// Record is one mf-bridge decision record.
type Record = decision.Record

// parseRecord reads a decision record; a line that is not one (bad JSON,
// no time, no phase, an unknown action) is unparsed.
func parseRecord(line []byte, ev *Event) Result {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil || r.Phase == "" || !slices.Contains(decision.Actions, r.Action) {
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
