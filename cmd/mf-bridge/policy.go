package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"mf/lib/policy"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// policyCmd is a Postfix SMTPD policy delegation server: each request
// is an envelope with no message, the stages of its phase run, and the
// answer is an access(5) action.
type policyCmd struct {
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

func (b *bridge) policy(ctx context.Context, _ io.Reader, _, _ io.Writer, _ func(string) (string, bool)) (int, error) {
	c := b.cfg.Policy
	ln, err := listen(c.PolicyListen)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	if err := b.dropPrivileges(); err != nil {
		return 0, err
	}
	rec, err := openRecorder(b.cfg.DecisionLog, b.stdout)
	if err != nil {
		return 0, err
	}
	defer rec.Close()
	b.rec = rec

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				if err := rec.reopen(); err != nil {
					b.log.Errorf("%v", err)
				}
				continue
			}
			b.log.Infof("%s: stopping", sig)
			cancel()
			ln.Close()
			return
		}
	}()
	b.log.Infof("policy: listening on %s:%s with %d stage(s)", ln.Addr().Network(), ln.Addr(), len(b.chain.Load().Stages))
	var wg sync.WaitGroup
	var conns sync.Map
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			b.log.Errorf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		conns.Store(conn, true)
		go func() {
			defer wg.Done()
			defer conns.Delete(conn)
			b.policyConn(ctx, conn, c.IdleTimeout)
		}()
	}
	conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	wg.Wait()
	b.log.Infof("stopped")
	return 0, nil
}

// policyConn answers the requests of one connection, in order, until the
// client closes it. Anything wrong is logged and the connection closed
// without an answer: Postfix then retries or applies its default, which
// is safer than an answer that might be wrong.
func (b *bridge) policyConn(ctx context.Context, conn net.Conn, idle time.Duration) {
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			b.log.Errorf("policy: internal error: %v; connection closed", p)
		}
	}()
	rd := policy.NewReader(conn)
	w := bufio.NewWriter(conn)
	for n := 1; ; n++ {
		conn.SetReadDeadline(time.Now().Add(idle))
		req, err := rd.Read()
		switch {
		case err == io.EOF:
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.log.Debugf("policy: %s idle for %s: closed", conn.RemoteAddr(), idle)
			return
		case err != nil:
			b.log.Errorf("policy: %s request %d: %v; connection closed", conn.RemoteAddr(), n, err)
			return
		}
		a, ok := b.policyStep(ctx, req)
		if !ok {
			return
		}
		w.WriteString(a.Line())
		if err := w.Flush(); err != nil {
			b.log.Warnf("policy: %s: %v", conn.RemoteAddr(), err)
			return
		}
	}
}

// policyStep runs the stages for one request and leaves its decision
// record. ok is false when the bridge itself failed.
func (b *bridge) policyStep(ctx context.Context, req *policy.Request) (policy.Answer, bool) {
	start := time.Now()
	state := req.Get("protocol_state")
	phase := policyPhase(state)
	if phase == "" {
		return policy.Answer{Action: policy.Dunno}, true
	}
	if ctx.Err() != nil {
		return policy.Answer{}, false
	}
	env := policyEnvelope(req, phase)
	ch := b.chain.Load()
	v := verdict.Verdict{Action: verdict.Continue}
	var adds []string
	rc := &record{phase: string(phase), env: env, start: start, verdict: v}
	if ch.Any(phase) {
		o := ch.Run(ctx, env, nil)
		defer o.Close()
		for _, res := range o.Results {
			b.logResult(env, res)
		}
		if ctx.Err() != nil {
			// Stopping: the stages were cut short, so their verdict is not one.
			return policy.Answer{}, false
		}
		v, adds = o.Verdict, o.Env.AddHeaders
		rc.results, rc.verdict = o.Results, v
	}
	a := policyAnswer(v, adds, phase)
	if len(adds) > 1 {
		b.log.Warnf("policy: %d header fields to add, Postfix takes one: only %q", len(adds), adds[0])
	}
	b.record(rc)
	return a, true
}
