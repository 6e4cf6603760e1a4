package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// test runs the chain on one message through the same session the milter
// uses, and prints each phase's reply and every change. The exit status
// is the final verdict.
func (srv *server) test(ctx context.Context, stdin io.Reader, stdout io.Writer) (int, error) {
	g := srv.gen.Load()
	t := g.cli.Test
	in := stdin
	if t.File != "" && t.File != "-" {
		f, err := os.Open(t.File)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		in = f
	}
	bare := stream.Envelope{Phase: "data", ClientName: "unknown"}
	s, err := stream.Read(in, stream.AutoInput, bare)
	if err != nil {
		return 0, fmt.Errorf("input: %w", err)
	}
	env := s.Env
	override(&env.ClientAddr, t.Client)
	override(&env.ClientName, t.ClientName)
	override(&env.Helo, t.Helo)
	override(&env.AuthUser, t.AuthUser)
	override(&env.MailFrom, stream.Unbracket(t.From))
	override(&env.QueueID, t.QueueID)
	if len(t.Rcpt) > 0 {
		env.Rcpts = nil
		for _, r := range t.Rcpt {
			env.Rcpts = append(env.Rcpts, stream.Unbracket(r))
		}
	}
	if env.ClientName == "" {
		env.ClientName = "unknown"
	}
	if err := srv.checkAll(ctx, g); err != nil {
		return 0, err
	}
	if err := srv.dropPrivileges(g.cli.User); err != nil {
		return 0, err
	}
	if !t.Live {
		// Decide as for real mail, but count nothing and add no entry.
		g.cfg.Chain.Runner.Env = append(g.cfg.Chain.Runner.Env, "MF_READ_ONLY=true")
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sess := bridge.NewSession(g.cfg) // a test leaves no decision record
	defer sess.Close()
	macros := map[string]string{}
	if env.QueueID != "" {
		macros["i"] = env.QueueID
	}
	show := func(what string, r *bridge.Reply) bool {
		fmt.Fprintf(out, "%s: %s\n", what, r.Verdict)
		for _, res := range r.Results {
			fmt.Fprintf(out, "  stage %s: %s\n", res.Stage.Name, describe(res))
		}
		return !r.Verdict.Action.Final() || r.Verdict.Action == verdict.Quarantine || r.Verdict.Action == verdict.Discard
	}
	final := func(r *bridge.Reply) int {
		return r.Verdict.ExitCode()
	}
	// A saved stream of an earlier phase is replayed up to that phase.
	last := slices.Index(stream.Phases, s.Env.Phase)
	upTo := func(phase stream.Phase) bool { return slices.Index(stream.Phases, phase) >= last }
	client := env.ClientAddr
	if client == "" {
		client = "(no address)"
	}
	r := sess.Connect(ctx, env.ClientName, env.ClientAddr, nil)
	if !show(fmt.Sprintf("connect %s [%s]", client, env.ClientName), r) || upTo("connect") {
		return final(r), nil
	}
	r = sess.Helo(ctx, env.Helo, nil)
	helo := env.Helo
	if helo == "" {
		helo = "(none)"
	}
	if !show("helo "+helo, r) || upTo("helo") {
		return final(r), nil
	}
	mailMacros := map[string]string{}
	if env.AuthUser != "" {
		mailMacros["{auth_authen}"] = env.AuthUser
	}
	r = sess.Mail(ctx, env.MailFrom, mailMacros)
	if !show("mail <"+env.MailFrom+">", r) || upTo("mail") {
		return final(r), nil
	}
	var refusal *bridge.Reply
	taken := 0
	for _, rc := range env.Rcpts {
		r = sess.Rcpt(ctx, rc, macros)
		show("rcpt <"+rc+">", r)
		switch {
		case r.Verdict.Action.Refuses():
			refusal = r
		case r.Verdict.Action == verdict.Accept:
			return final(r), nil
		default:
			taken++
		}
	}
	if upTo("rcpt") {
		if refusal != nil && taken == 0 {
			return final(refusal), nil
		}
		return final(r), nil
	}
	if len(env.Rcpts) > 0 && taken == 0 {
		fmt.Fprintln(out, "data: not reached, every recipient was refused")
		return final(refusal), nil
	}
	fields, first, err := bridge.ReadHeader(s.Message)
	if err == nil {
		err = sess.Feed(fields, first, s.Message)
	}
	if err != nil {
		return 0, fmt.Errorf("input: %w", err)
	}
	r, err = sess.EOM(ctx, macros)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	show("data", r)
	for _, e := range r.Edits {
		fmt.Fprintf(out, "  %s\n", e)
	}
	if r.Verdict.Action == verdict.Quarantine {
		fmt.Fprintf(out, "  quarantine %q\n", r.Verdict.Reply.Text)
	}
	if r.Body != nil {
		if n, err := r.Body.Size(); err == nil {
			fmt.Fprintf(out, "  replace body (%d bytes)\n", n)
		}
	}
	return final(r), nil
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// describe says what one stage did, for a person.
func describe(r *chain.Result) string {
	var b strings.Builder
	b.WriteString(r.Verdict.String())
	if r.Err != nil {
		fmt.Fprintf(&b, " (failed: %v; on-error)", r.Err)
	} else {
		fmt.Fprintf(&b, " (exit %d", r.Exit)
		if n := len(r.Headers); n > 0 {
			fmt.Fprintf(&b, ", %d header field(s)", n)
		}
		b.WriteString(")")
	}
	if r.InProc {
		b.WriteString(" in-process")
	}
	if r.Stderr != "" {
		fmt.Fprintf(&b, ": %s", bridge.LastLine(r.Stderr))
	}
	return b.String()
}
