// Package decision is the decision record: the JSON line mf-bridge writes
// for each decision and mf-stat reads, documented in mf-bridge(8).
package decision

// Record is one decision: a message at the end of data, or a transaction
// or recipient refused, or accepted, before it.
type Record struct {
	Time       string   `json:"time"` // RFC 3339, UTC, with microseconds
	Host       string   `json:"host,omitempty"`
	QueueID    string   `json:"queue_id,omitempty"`
	Phase      string   `json:"phase"` // connect, helo, mail, rcpt or data
	ClientAddr string   `json:"client_addr,omitempty"`
	ClientName string   `json:"client_name,omitempty"`
	Helo       string   `json:"helo,omitempty"`
	AuthUser   string   `json:"auth_user,omitempty"`
	MailFrom   *string  `json:"mail_from,omitempty"` // "" is the null sender; nil before MAIL
	Rcpts      []string `json:"rcpts,omitempty"`
	Size       int64    `json:"size,omitempty"`
	Stages     []Stage  `json:"stages,omitempty"`
	Action     string   `json:"action"` // accept, reject, tempfail, discard or quarantine
	Reply      string   `json:"reply,omitempty"`
	MS         float64  `json:"ms"`
}

// Stage is what one stage did; each stage run is in exactly one record.
type Stage struct {
	Name   string  `json:"name"`
	Phase  string  `json:"phase"`
	Action string  `json:"action"`
	Exit   int     `json:"exit"` // -1 when killed or never started
	MS     float64 `json:"ms"`
	Reply  string  `json:"reply,omitempty"`
	Error  string  `json:"error,omitempty"` // the stage failed; Action is its on-error
	// Trace is the Mf-Trace line the stage added, "PROGRAM ACTION
	// WORDS TIMEms": an mf stage's words say what matched
	// ("list=20-block-clients client-addr=192.0.2.7", "rule=per-sender").
	Trace string `json:"trace,omitempty"`
	// Stderr is the last line the stage wrote on stderr: an mf stage's
	// reason for its verdict (the list file, line and entry; the rule and
	// its count against the limit), a failed stage's last words. It may
	// name internals the SMTP reply does not.
	Stderr string `json:"stderr,omitempty"`
}

// Actions are the outcomes a record can have.
var Actions = []string{"accept", "reject", "tempfail", "discard", "quarantine"}
