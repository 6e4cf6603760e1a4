package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"mf/lib/bridge"
	"mf/lib/cli"
	"mf/lib/policy"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// policyCmd is a Postfix SMTPD policy delegation server: each request
// is an envelope with no message, the stages of its phase run, and the
// answer is an access(5) action.
type policyCmd struct {
	records
	PolicyListen string        `default:"inet:127.0.0.1:10040" placeholder:"ADDR" help:"Where to listen: inet:HOST:PORT, inet6:[HOST]:PORT or unix:PATH (then check_policy_service unix:PATH, a path Postfix can reach)."`
	IdleTimeout  time.Duration `default:"330s" help:"Close a connection that sent no request for this long (Postfix's smtpd_policy_service_max_idle is 300s, and it reconnects)."`
}

// policyPhase is the phase a protocol_state asks about; "" for states
// at which no stage runs: DATA and END-OF-MESSAGE (the protocol carries
// no message, so data stages run only under the milter and qmail-queue
// modes), VRFY, ETRN.
func policyPhase(state string) stream.Phase {
	switch strings.ToUpper(state) {
	case "CONNECT":
		return stream.Connect
	case "EHLO", "HELO":
		return stream.Helo
	case "MAIL":
		return stream.Mail
	case "RCPT":
		return stream.Rcpt
	}
	return ""
}

// policyEnvelope is the envelope a request describes.
func policyEnvelope(req *policy.Request, phase stream.Phase) stream.Envelope {
	env := stream.Envelope{
		Phase:      phase,
		QueueID:    req.Get("queue_id"),
		ClientAddr: req.Get("client_address"),
		ClientName: req.Get("client_name"),
		Helo:       req.Get("helo_name"),
		AuthUser:   req.Get("sasl_username"),
		MailFrom:   req.Get("sender"),
	}
	if env.ClientName == "" {
		env.ClientName = "unknown"
	}
	if phase == stream.Rcpt && req.Get("recipient") != "" {
		env.Rcpts = []string{req.Get("recipient")}
	}
	// Every attribute is also a macro, as a milter sees Postfix's: a
	// stage can read size, reverse_client_name, instance and the rest.
	for _, n := range req.Names {
		if n == "request" || strings.ContainsAny(n, " {}") {
			continue
		}
		env.Macros = append(env.Macros, stream.Macro{Name: "{" + n + "}", Value: req.Get(n)})
	}
	return env
}

// policyAnswer is the access(5) action for what the stages decided.
func policyAnswer(v verdict.Verdict, addHeaders []string, phase stream.Phase) policy.Answer {
	switch v.Action {
	case verdict.Accept:
		return policy.Answer{Action: policy.OK}
	case verdict.Reject, verdict.Tempfail:
		r := v.Reply
		a := policy.Reject
		if v.Action == verdict.Tempfail {
			a = policy.Defer
		}
		text := strings.TrimSpace(r.Status + " " + r.Text)
		return policy.Answer{Action: a, Text: text}
	case verdict.Discard:
		return policy.Answer{Action: policy.Discard, Text: v.Reply.Text}
	case verdict.Quarantine:
		return policy.Answer{Action: policy.Hold, Text: v.Reply.Text}
	}
	if len(addHeaders) > 0 {
		return policy.Answer{Action: policy.Prepend, Text: addHeaders[0]}
	}
	return policy.Answer{Action: policy.Dunno}
}

// Run serves policy requests until SIGTERM; SIGHUP reloads the
// configuration, for the requests after it, as the milter does.
func (cmd *policyCmd) Run(env *cli.Env, c *root) error {
	srv, err := start(env, c, "")
	if err != nil {
		return err
	}
	return srv.policy(env.Ctx, cmd, c, env.Args, env.LookupEnv)
}

func (srv *server) policy(ctx context.Context, cmd *policyCmd, c *root, args []string, lookupEnv func(string) (string, bool)) error {
	tuneRuntime(lookupEnv)
	ln, err := listen(cmd.PolicyListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	closeRecords, err := srv.settle(c.User, cmd.DecisionLog)
	if err != nil {
		return err
	}
	defer closeRecords()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer srv.onSignals(ctx, args, lookupEnv, func(sig string) {
		srv.log.Infof("%s: stopping", sig)
		cancel()
		ln.Close()
	})()
	srv.log.Infof("policy: listening on %s:%s with %d stage(s)", ln.Addr().Network(), ln.Addr(), len(srv.gen.Load().cfg.Chain.Stages))
	conns := srv.accept(ln, func(conn net.Conn) { srv.policyConn(ctx, conn, cmd.IdleTimeout) })
	conns.closeAll()
	conns.wait()
	srv.log.Infof("stopped")
	return nil
}

// policyConn answers the requests of one connection, in order, until the
// client closes it. Anything wrong is logged and the connection closed
// without an answer: Postfix then retries or applies its default, which
// is safer than an answer that might be wrong.
func (srv *server) policyConn(ctx context.Context, conn net.Conn, idle time.Duration) {
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			srv.log.Errorf("policy: internal error: %v; connection closed", p)
		}
	}()
	srv.log.Debugf("policy: connection from %s", conn.RemoteAddr())
	rd := policy.NewReader(conn)
	w := bufio.NewWriter(conn)
	for n := 1; ; n++ {
		conn.SetReadDeadline(time.Now().Add(idle))
		req, err := rd.Read()
		switch {
		case err == io.EOF, ctx.Err() != nil:
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			srv.log.Debugf("policy: %s idle for %s: closed", conn.RemoteAddr(), idle)
			return
		case err != nil:
			srv.log.Errorf("policy: %s request %d: %v; connection closed", conn.RemoteAddr(), n, err)
			return
		}
		// Each request under the configuration of its time.
		a, ok := policyStep(ctx, srv.gen.Load().cfg, req)
		if !ok {
			return
		}
		srv.log.Debugf("policy: %s request %d (%s): %s", conn.RemoteAddr(), n, req.Get("protocol_state"), strings.TrimSpace(a.Line()))
		w.WriteString(a.Line())
		if err := w.Flush(); err != nil {
			srv.log.Warnf("policy: %s: %v", conn.RemoteAddr(), err)
			return
		}
	}
}

// policyStep runs the stages for one request; lib/bridge records the
// decision. ok is false when no answer may be given.
func policyStep(ctx context.Context, cfg *bridge.Config, req *policy.Request) (policy.Answer, bool) {
	phase := policyPhase(req.Get("protocol_state"))
	if phase == "" {
		return policy.Answer{Action: policy.Dunno}, true
	}
	if ctx.Err() != nil {
		return policy.Answer{}, false
	}
	r := cfg.Step(ctx, policyEnvelope(req, phase))
	if ctx.Err() != nil {
		// Stopping: the stages were cut short, so their verdict is not one.
		return policy.Answer{}, false
	}
	var adds []string
	for _, res := range r.Results {
		adds = append(adds, res.Headers...)
		if res.Env != nil {
			adds = append(adds, res.Env.AddHeaders...)
		}
	}
	if len(adds) > 1 {
		cfg.Log.Warnf("policy: %d header fields to add, Postfix takes one: only %q", len(adds), adds[0])
	}
	return policyAnswer(r.Verdict, adds, phase), true
}
