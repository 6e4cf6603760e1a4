package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"mf/lib/qmail"
	"mf/lib/stream"
)

// quarantineCmd looks after the quarantine Maildir of the qmail-queue
// mode; its --quarantine-dir and --qmail-queue are that mode's settings
// (bridge.quarantine-dir, bridge.qmail-queue).
type quarantineCmd struct {
	QmailQueue    string `default:"/var/qmail/bin/qmail-queue" type:"path" placeholder:"PATH" help:"The real qmail-queue, which a released message is handed to."`
	QuarantineDir string `type:"path" placeholder:"DIR" help:"The quarantine Maildir of the qmail-queue mode."`

	List    struct{} `cmd:"" help:"List the held messages: id, time, size, sender, recipients, reason."`
	Release struct {
		ID []string `arg:"" help:"The messages (ids as list shows them, or unique prefixes)."`
	} `cmd:"" help:"Hand held messages to the real qmail-queue, as they came, and remove them once queued."`
	Delete struct {
		ID []string `arg:"" help:"The messages (ids as list shows them, or unique prefixes)."`
	} `cmd:"" help:"Remove held messages without delivering them."`
}

func (b *bridge) quarantine(ctx context.Context, command string, stdout, stderr io.Writer) (int, error) {
	c := b.cfg.Quarantine
	if c.QuarantineDir == "" {
		return 0, errors.New("no quarantine directory: set bridge.quarantine-dir or --quarantine-dir")
	}
	q := qmail.Quarantine{Dir: c.QuarantineDir}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	switch cmd, _, _ := strings.Cut(command, " <"); cmd {
	case "quarantine list":
		all, err := q.List()
		if err != nil {
			return 0, err
		}
		for _, h := range all {
			fmt.Fprintf(out, "%s %s %d <%s> %s: %s\n", h.ID, h.Time.UTC().Format("2006-01-02T15:04:05Z"), h.Size,
				stream.Encode(h.Env.MailFrom), rcptList(h.Env.Rcpts), stream.Encode(h.Reason))
		}
		return 0, nil
	case "quarantine release":
		failed := 0
		for _, id := range b.cfg.Quarantine.Release.ID {
			if err := b.release(q, id, c.QmailQueue, stderr); err != nil {
				b.log.Errorf("%v", err)
				failed++
				continue
			}
			fmt.Fprintf(out, "%s released\n", id)
		}
		if failed > 0 {
			return 1, nil
		}
		return 0, nil
	case "quarantine delete":
		failed := 0
		for _, id := range b.cfg.Quarantine.Delete.ID {
			h, err := q.Find(id)
			if err == nil {
				err = h.Remove()
			}
			if err != nil {
				b.log.Errorf("%v", err)
				failed++
				continue
			}
			fmt.Fprintf(out, "%s deleted\n", h.ID)
		}
		if failed > 0 {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("quarantine: unknown command %q", command)
}

func rcptList(rcpts []string) string {
	out := make([]string, len(rcpts))
	for i, r := range rcpts {
		out[i] = "<" + stream.Encode(r) + ">"
	}
	return strings.Join(out, ",")
}

// release hands one held message to qmail-queue, and removes it only
// once qmail-queue took it.
func (b *bridge) release(q qmail.Quarantine, id, qq string, stderr io.Writer) error {
	h, err := q.Find(id)
	if err != nil {
		return err
	}
	f, s, err := h.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	// qmail-queue reads fd 0 from where it stands: the message, spooled
	// afresh so the envelope block is not part of it.
	msg, err := os.CreateTemp(b.cfg.SpoolDir, "mf-release-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	os.Remove(msg.Name())
	defer msg.Close()
	if _, err := io.Copy(msg, s.Message); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := msg.Seek(0, io.SeekStart); err != nil {
		return err
	}
	env := &qmail.Envelope{Sender: s.Env.MailFrom, Rcpts: s.Env.Rcpts}
	code, err := qmail.Queue(qq, msg, env, stderr, nil)
	if err != nil {
		return fmt.Errorf("release %s: %w", h.ID, err)
	}
	if code != qmail.ExitQueued {
		return fmt.Errorf("release %s: %s exited %d (%s); the message stays held", h.ID, qq, code, qmail.Reply(code, ""))
	}
	return h.Remove()
}
