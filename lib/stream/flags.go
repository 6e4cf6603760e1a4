package stream

// Flags give the envelope of a bare message, for a person testing by hand
// or a program run from qmail. They are ignored when the input is a stream.
//
// A bare message is the default: what arrives from the network must never
// pass for a stream (a message that starts "Mf-Stream: 1" would forge its
// envelope and verdict), so a stream is read only when the program that
// hands it over says so (mf-bridge sets MF_INPUT=stream for the stages it
// gives one).
type Flags struct {
	Input      string   `enum:"message,stream,auto" default:"message" help:"What stdin holds: message (a bare message, the envelope from the flags below or qmail's environment), stream (an mf stream, as from mf-bridge or an earlier stage of a pipeline), or auto (a stream if it starts with Mf-Stream:, for trusted input only)."`
	Phase      string   `group:"envelope" aliases:"stage" enum:"connect,helo,mail,rcpt,data" default:"data" help:"SMTP phase of a bare message."`
	From       string   `group:"envelope" placeholder:"ADDR" help:"Envelope sender of a bare message (default: $$SENDER)."`
	Rcpt       []string `group:"envelope" sep:"none" placeholder:"ADDR" help:"Envelope recipient of a bare message; repeat for several (default: $$RECIPIENT)."`
	Client     string   `group:"envelope" placeholder:"IP" help:"Client address of a bare message (default: $$TCPREMOTEIP)."`
	ClientName string   `group:"envelope" placeholder:"HOST" help:"Verified client host name of a bare message (default: $$TCPREMOTEHOST)."`
	Helo       string   `group:"envelope" placeholder:"NAME" help:"HELO/EHLO name of a bare message."`
	AuthUser   string   `group:"envelope" placeholder:"USER" help:"SMTP AUTH user of a bare message."`
	QueueID    string   `group:"envelope" placeholder:"ID" help:"Queue ID of a bare message (default: $$QUEUE_ID)."`
}

// InputKind is the Input flag as an Input.
func (f *Flags) InputKind() Input {
	switch f.Input {
	case "stream":
		return StreamInput
	case "auto":
		return AutoInput
	}
	return MessageInput
}

// Envelope builds the envelope of a bare message from the flags, falling
// back to qmail's environment (SENDER, RECIPIENT, TCPREMOTEIP,
// TCPREMOTEHOST) through getenv.
func (f *Flags) Envelope(getenv func(string) string) Envelope {
	or := func(v, env string) string {
		if v != "" {
			return v
		}
		return getenv(env)
	}
	e := Envelope{
		Phase:      Phase(f.Phase),
		ClientAddr: or(f.Client, "TCPREMOTEIP"),
		ClientName: or(f.ClientName, "TCPREMOTEHOST"),
		Helo:       f.Helo,
		AuthUser:   f.AuthUser,
		QueueID:    or(f.QueueID, "QUEUE_ID"),
		MailFrom:   Unbracket(or(f.From, "SENDER")),
	}
	for _, r := range f.Rcpt {
		e.Rcpts = append(e.Rcpts, Unbracket(r))
	}
	if len(e.Rcpts) == 0 {
		if r := getenv("RECIPIENT"); r != "" {
			e.Rcpts = []string{Unbracket(r)}
		}
	}
	if e.Phase == "" {
		e.Phase = Data
	}
	return e
}
