package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"mf/lib/cli"
	"mf/lib/qmail"
	"mf/lib/spool"
	"mf/lib/stream"
)

// quarantineCmd looks after the quarantine Maildir of the qmail-queue
// mode; --quarantine-dir and --qmail-queue are that mode's settings
// (bridge.quarantine-dir, bridge.qmail-queue).
type quarantineCmd struct {
	QmailQueue    string `default:"/var/qmail/bin/qmail-queue" type:"path" placeholder:"PATH" help:"The real qmail-queue, which a released message is handed to."`
	QuarantineDir string `type:"path" placeholder:"DIR" help:"The quarantine Maildir of the qmail-queue mode."`

	List    quarantineList    `cmd:"" help:"List the held messages: id, time, size, sender, recipients, reason."`
	Release quarantineRelease `cmd:"" help:"Hand held messages to the real qmail-queue, as they came, and remove each once queued."`
	Delete  quarantineDelete  `cmd:"" help:"Remove held messages without delivering them."`
}

type quarantineList struct{}

type quarantineRelease struct {
	ID []string `arg:"" help:"The messages (ids as list shows them, or unique prefixes)."`
}

type quarantineDelete struct {
	ID []string `arg:"" help:"The messages (ids as list shows them, or unique prefixes)."`
}

func (q *quarantineCmd) dir() (qmail.Quarantine, error) {
	if q.QuarantineDir == "" {
		return qmail.Quarantine{}, errors.New("no quarantine directory: set bridge.quarantine-dir or --quarantine-dir")
	}
	return qmail.Quarantine{Dir: q.QuarantineDir}, nil
}

func (cmd *quarantineList) Run(env *cli.Env, q *quarantineCmd) error {
	dir, err := q.dir()
	if err != nil {
		return err
	}
	all, err := dir.List()
	if err != nil {
		return err
	}
	out := bufio.NewWriter(env.Stdout)
	for _, h := range all {
		fmt.Fprintf(out, "%s %s %d <%s> %s: %s\n", h.ID, h.Time.UTC().Format("2006-01-02T15:04:05Z"), h.Size,
			stream.Encode(h.Env.MailFrom), rcptList(h.Env.Rcpts), stream.Encode(h.Reason))
	}
	return out.Flush()
}

// Run releases each message; exit 1 when one could not be.
func (cmd *quarantineRelease) Run(env *cli.Env, q *quarantineCmd, c *root) error {
	dir, err := q.dir()
	if err != nil {
		return err
	}
	for _, id := range cmd.ID {
		h, err := release(dir, id, q.QmailQueue, c.SpoolDir, env.Stderr)
		if err != nil {
			env.Log.Errorf("%v", err)
			env.Code = 1
			continue
		}
		fmt.Fprintf(env.Stdout, "%s released\n", h)
	}
	return nil
}

// Run deletes each message; exit 1 when one could not be.
func (cmd *quarantineDelete) Run(env *cli.Env, q *quarantineCmd) error {
	dir, err := q.dir()
	if err != nil {
		return err
	}
	for _, id := range cmd.ID {
		h, err := dir.Find(id)
		if err == nil {
			err = h.Remove()
		}
		if err != nil {
			env.Log.Errorf("%v", err)
			env.Code = 1
			continue
		}
		fmt.Fprintf(env.Stdout, "%s deleted\n", h.ID)
	}
	return nil
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
func release(q qmail.Quarantine, id, qq, spoolDir string, stderr io.Writer) (string, error) {
	h, err := q.Find(id)
	if err != nil {
		return "", err
	}
	f, s, err := h.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	// qmail-queue reads fd 0 from where it stands: the message, spooled
	// afresh so the envelope block is not part of it.
	msg, err := spool.Create(spoolDir, "mf-release-*")
	if err != nil {
		return "", err
	}
	defer msg.Close()
	if _, err := io.Copy(msg, s.Message); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	if _, err := msg.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	env := &qmail.Envelope{Sender: s.Env.MailFrom, Rcpts: s.Env.Rcpts}
	code, err := qmail.Queue(qq, msg, env, stderr, nil)
	if err != nil {
		return "", fmt.Errorf("release %s: %w", h.ID, err)
	}
	if code != qmail.ExitQueued {
		return "", fmt.Errorf("release %s: %s exited %d (%s); the message stays held", h.ID, qq, code, qmail.Reply(code, ""))
	}
	return h.ID, h.Remove()
}
