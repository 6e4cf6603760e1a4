package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"mf/lib/chain"
	"mf/lib/edit"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// test runs the chain on one message through the same session the milter
// uses, and prints each phase's reply and every change. The exit status
// is the final verdict.
func (b *bridge) test(ctx context.Context, stdin io.Reader, stdout io.Writer) (int, error) {
	t := b.cfg.Test
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
	if err := b.dropPrivileges(); err != nil {
		return 0, err
	}
	b.rec = nil // a test leaves no decision record

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sess := newSession(b)
	defer sess.Close()
	macros := map[string]string{}
	if env.QueueID != "" {
		macros["i"] = env.QueueID
	}
	show := func(what string, r *Reply) bool {
		fmt.Fprintf(out, "%s: %s\n", what, r.Verdict)
		for _, res := range r.Results {
			fmt.Fprintf(out, "  stage %s: %s\n", res.Stage.Name, describe(res))
		}
		return !r.Verdict.Action.Final() || r.Verdict.Action == verdict.Quarantine || r.Verdict.Action == verdict.Discard
	}
	final := func(r *Reply) int {
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
	var refusal *Reply
	taken := 0
	for _, rc := range env.Rcpts {
		r = sess.Rcpt(ctx, rc, macros)
		show("rcpt <"+rc+">", r)
		switch {
		case refused(r.Verdict):
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
	if err := feed(sess, s.Message); err != nil {
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
		st, err := r.Body.File.Stat()
		if err == nil {
			fmt.Fprintf(out, "  replace body (%d bytes)\n", st.Size()-r.Body.Offset)
		}
	}
	return final(r), nil
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// feed hands the message to the session as an MTA would: each header
// field, then the body in pieces.
func feed(sess *session, msg *bufio.Reader) error {
	head, first, err := splitHeader(msg)
	if err != nil {
		return err
	}
	fields, err := edit.ReadFields(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return fmt.Errorf("message header: %w", err)
	}
	for _, f := range fields {
		sess.Header(f.Name, f.Value)
	}
	if err := sess.EOH(); err != nil {
		return err
	}
	if err := sess.Body(first); err != nil {
		return err
	}
	buf := make([]byte, 65535)
	for {
		n, err := msg.Read(buf)
		if n > 0 {
			if err := sess.Body(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// splitHeader reads the header as an MTA does: up to the empty line, or
// up to the first line that cannot be a header line, which then starts
// the body, so a stranger's broken header is replayed, not refused. head
// ends with an empty line; first is the start of the body, if it was read.
func splitHeader(msg *bufio.Reader) (head, first []byte, err error) {
	for {
		line, err := msg.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, nil, err
		}
		switch {
		case len(line) == 0:
			return append(head, '\n'), nil, nil
		case bytes.Equal(line, []byte("\n")) || bytes.Equal(line, []byte("\r\n")):
			return append(head, line...), nil, nil
		case (line[0] == ' ' || line[0] == '\t') && len(head) > 0, fieldStart(line):
			head = append(head, line...)
			if err == io.EOF {
				return append(head, '\n'), nil, nil
			}
		default:
			return append(head, '\n'), line, nil
		}
	}
}

// fieldStart reports whether line begins a header field: a name of
// printable characters, then a colon.
func fieldStart(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	name = bytes.TrimRight(name, " \t")
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
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
	if r.Stderr != "" {
		fmt.Fprintf(&b, ": %s", lastLine(r.Stderr))
	}
	return b.String()
}
