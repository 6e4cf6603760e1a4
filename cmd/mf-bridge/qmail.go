package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"mf/lib/bridge"
	"mf/lib/chain"
	"mf/lib/cli"
	"mf/lib/edit"
	"mf/lib/logger"
	"mf/lib/qmail"
	"mf/lib/spool"
	"mf/lib/stream"
	"mf/lib/verdict"
)

// qmailQueueCmd is mf-bridge as the program QMAILQUEUE names: the chain
// runs on what qmail-smtpd (or qmail-inject) hands to qmail-queue, and
// the result goes on to the real qmail-queue, or is refused in
// qmail-queue's own exit codes, which qmail-smtpd turns into replies.
type qmailQueueCmd struct {
	records
	QmailQueue    string `default:"/var/qmail/bin/qmail-queue" type:"path" placeholder:"PATH" help:"The real qmail-queue, which gets the message once the chain passed it."`
	ErrorFD       int    `default:"6" placeholder:"FD" help:"The custom error descriptor of qmail-smtpd's exit-82 patch (6 for notqmail and the v2 patch, 4 for the older one, -1 for none). When it is not open a refusal exits 31 or 71 with qmail's own text."`
	QuarantineDir string `type:"path" placeholder:"DIR" help:"The Maildir quarantined messages are held in, with their envelope and reason (see \"mf-bridge quarantine\"). Without it a quarantine verdict is a temporary refusal."`
}

// qmailArgv0 is the name under which mf-bridge is the qmail-queue mode
// with no arguments: qmail runs $QMAILQUEUE with none.
const qmailArgv0 = "mf-qmail-queue"

func init() {
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == qmailArgv0 {
		os.Args = append([]string{os.Args[0], "qmail-queue"}, os.Args[1:]...)
	}
}

// Run is the qmail-queue mode. Its exit status is qmail-queue's: what
// mf calls error (75) would be "451 qq temporary problem" anyway, so
// every fault of its own is 71 (or 82 with a text), 53 for a spool that
// cannot be written, 54 for a read error and 91 for a malformed envelope,
// as qmail-queue says them. It never returns an error.
func (cmd *qmailQueueCmd) Run(env *cli.Env, c *root) error {
	env.Code = cmd.run(env, c)
	return nil
}

func (cmd *qmailQueueCmd) run(env *cli.Env, c *root) (code int) {
	log := env.Log
	defer func() {
		if p := recover(); p != nil {
			log.Errorf("internal error: %v", p)
			code = qmail.ExitTemp
		}
	}()
	ctx, stop := signal.NotifyContext(env.Ctx, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	srv, err := start(env, c, "")
	if err != nil {
		log.Errorf("%v", err)
		return qmail.ExitTemp
	}
	if ownProcess {
		if err := srv.dropPrivileges(c.User); err != nil {
			log.Errorf("%v", err)
			return qmail.ExitTemp
		}
	}
	rec, err := bridge.OpenRecorder(cmd.DecisionLog, io.Discard)
	if err != nil {
		log.Errorf("%v", err)
		return qmail.ExitTemp
	}
	defer rec.Close()
	cfg := *srv.gen.Load().cfg
	cfg.Records = rec
	cfg.Hidden = 0 // qmail keeps nothing above the header it hands on
	q := &qmailRun{cfg: &cfg, c: cmd, spoolDir: c.SpoolDir, stderr: env.Stderr, errorFD: cmd.ErrorFD}
	return q.run(ctx, env.Stdin, envelopeFile(), env.LookupEnv)
}

// ownProcess says this process is mf-bridge's own, not a Go test's,
// which runs many modes in one process that must stay what it is: only
// then may it drop privileges, or end by becoming the real qmail-queue.
var ownProcess = true

// envelopeFile is fd 1, which qmail-queue reads. It is os.Stdout, which
// lives as long as the process: a *os.File of its own for fd 1 would be
// closed by its finalizer once the envelope was read and dropped, at
// whatever moment the collector chose, and by then fd 1 may be the
// envelope handed on to the real qmail-queue (a 25 MB message made that
// likely: qmail-smtpd said "qq read error").
var envelopeFile = func() io.Reader { return os.Stdout }

type qmailRun struct {
	cfg      *bridge.Config
	c        *qmailQueueCmd
	spoolDir string
	stderr   io.Writer
	errorFD  int // the custom error descriptor in this process; -1 for none

	// handOff, when set, gives the message and envelope to whoever
	// becomes the real qmail-queue (the qmail-server's client) and
	// returns handedOff, or a qmail-queue status of its own when it could
	// not.
	handOff func(path string, msg *os.File, env *qmail.Envelope) int
}

// handedOff is run's result when handOff answered the client.
const handedOff = -1

func (q *qmailRun) run(ctx context.Context, msgIn, envIn io.Reader, lookupEnv func(string) (string, bool)) int {
	log := q.cfg.Log
	// 1. All of fd 0 first: qmail-smtpd writes the envelope only after
	// it has closed the message.
	// Unlinked at once: the open file is all there is, on every exit.
	// In memory while small (spool.Spill).
	f, _, err := spool.Fill(q.spoolDir, "mf-qq-*", msgIn)
	if errors.Is(err, spool.ErrRead) {
		log.Errorf("read message: %v", err)
		return qmail.ExitRead
	}
	if err != nil {
		log.Errorf("%v", err)
		return qmail.ExitWrite
	}
	defer f.Close()
	// 2. Then fd 1.
	env, err := qmail.ReadEnvelope(envIn)
	if err != nil {
		log.Errorf("%v", err)
		return qmail.ExitCode(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		log.Errorf("spool: %v", err)
		return qmail.ExitWrite
	}
	t := &qmailTxn{qmailRun: q, spool: f, env: env, lookupEnv: lookupEnv}
	return t.filter(ctx)
}

// qmailTxn is one message handed to qmail-queue.
type qmailTxn struct {
	*qmailRun
	spool     *os.File
	env       *qmail.Envelope
	lookupEnv func(string) (string, bool)
	fields    []stream.Field // the header as it came
	headLen   int64          // its bytes, the empty line included (0 when it has none)

	host, addr, helo, auth string // the client, as client() found it
}

func (t *qmailTxn) getenv(k string) string {
	v, _ := t.lookupEnv(k)
	return v
}

// client is who qmail-smtpd says sent the message: from the tcpserver
// environment, and the HELO name and AUTH user from qmail-smtpd's own
// Received line, the only place it writes them. The line is believed only
// when it names the same client address as TCPREMOTEIP, so a message from
// qmail-inject, which has no such line, cannot claim one.
func (t *qmailTxn) client() (host, addr, helo, auth string) {
	addr = t.getenv("TCPREMOTEIP")
	host = t.getenv("TCPREMOTEHOST")
	if addr == "" {
		return "", "", "", ""
	}
	if len(t.fields) > 0 && strings.EqualFold(t.fields[0].Name, "Received") {
		if r, ok := qmail.ParseReceived([]byte("Received: " + t.fields[0].Value)); ok && r.IP == addr {
			helo, auth = r.Helo, r.AuthUser()
			if host == "" && r.Host != "unknown" {
				host = r.Host
			}
		}
	}
	if host == "" {
		host = "unknown"
	}
	return host, addr, helo, auth
}

func (t *qmailTxn) filter(ctx context.Context) int {
	log := t.cfg.Log
	cr := &spool.Counter{R: t.spool}
	br := bufio.NewReader(cr) // a small one: the body is read past it
	fields, first, err := bridge.ReadHeader(br)
	if err != nil {
		// A header mf cannot split is handed on untouched, as qmail would
		// queue it; the data stages see it as the body.
		log.Warnf("message header: %v", err)
		fields, first = nil, nil
		if _, err := t.spool.Seek(0, io.SeekStart); err != nil {
			log.Errorf("spool: %v", err)
			return qmail.ExitWrite
		}
		cr = &spool.Counter{R: t.spool}
		br = bufio.NewReader(cr)
	}
	t.fields = fields
	// The header's bytes in the spool, its empty line included.
	t.headLen = cr.N - int64(br.Buffered()) - int64(len(first))
	host, addr, helo, auth := t.client()

	t.host, t.addr, t.helo, t.auth = host, addr, helo, auth
	s := bridge.NewSession(t.cfg)
	defer s.Close()
	r := s.Connect(ctx, host, addr, t.macros())
	if done, code := t.early(r); done {
		return code
	}
	r = s.Helo(ctx, helo, nil)
	if done, code := t.early(r); done {
		return code
	}
	macros := map[string]string{}
	if auth != "" {
		macros["{auth_authen}"] = auth
	}
	r = s.Mail(ctx, t.env.Sender, macros)
	if done, code := t.early(r); done {
		return code
	}
	// qmail-queue cannot refuse one recipient: a refused one is left out
	// of what is handed on. A temporary refusal of one refuses the
	// message for now, or that recipient's mail would be lost.
	var taken []string
	var perm, temp *bridge.Reply
	for _, rc := range t.env.Rcpts {
		r := s.Rcpt(ctx, rc, nil)
		switch r.Verdict.Action {
		case verdict.Reject:
			perm = r
			continue
		case verdict.Tempfail:
			temp = r
			continue
		}
		taken = append(taken, rc)
	}
	switch {
	case temp != nil:
		return t.refuse(temp.Verdict)
	case len(taken) == 0 && perm != nil:
		return t.refuse(perm.Verdict)
	}
	t.env.Rcpts = taken

	// qmail's LF line ends are kept as they are.
	if err := s.Feed(t.fields, first, br); err != nil {
		log.Errorf("read message: %v", err)
		return qmail.ExitRead
	}
	r, err = s.EOM(ctx, nil)
	if err != nil {
		log.Errorf("%v", err)
		return t.refuse(verdict.New(verdict.Tempfail, verdict.DefaultTempfail))
	}
	defer r.Close()
	switch r.Verdict.Action {
	case verdict.Reject, verdict.Tempfail:
		return t.refuse(r.Verdict)
	case verdict.Discard:
		log.Infof("message from <%s> discarded; qmail-smtpd says 250", t.env.Sender)
		return qmail.ExitQueued
	case verdict.Quarantine:
		return t.quarantine(r)
	}
	return t.handOn(r)
}

// qmailMacros are the tcpserver and tcprules variables a stage may want
// (RELAYCLIENT says the client may relay): they reach it as macros of
// the same names, since stages do not inherit the bridge's environment.
var qmailMacros = []string{"PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEPORT", "TCPREMOTEINFO", "RELAYCLIENT"}

func (t *qmailTxn) macros() map[string]string {
	m := map[string]string{}
	for _, k := range qmailMacros {
		if v, ok := t.lookupEnv(k); ok {
			m[k] = v
		}
	}
	return m
}

// early ends the transaction when the chain refused or accepted it
// before the message.
func (t *qmailTxn) early(r *bridge.Reply) (bool, int) {
	switch r.Verdict.Action {
	case verdict.Reject, verdict.Tempfail:
		return true, t.refuse(r.Verdict)
	}
	return false, 0
}

// refuse exits as qmail-queue does for a refusal: with the stage's reply
// on the custom error descriptor when there is one, else 31 or 71.
func (t *qmailTxn) refuse(v verdict.Verdict) int {
	text := qmail.CustomText(v.Reply)
	perm := v.Action == verdict.Reject
	if err := qmail.WriteCustom(t.errorFD, text); err == nil {
		return qmail.ExitCustom
	} else if err != qmail.ErrNoDescriptor {
		t.cfg.Log.Warnf("custom error descriptor %d: %v", t.c.ErrorFD, err)
	}
	if perm {
		return qmail.ExitPerm
	}
	return qmail.ExitTemp
}

// handOn runs the real qmail-queue on the message as the chain left it,
// and exits with its status.
func (t *qmailTxn) handOn(r *bridge.Reply) int {
	msg, err := t.message(r)
	if err != nil {
		t.cfg.Log.Errorf("%v", err)
		return qmail.ExitWrite
	}
	if msg != t.spool {
		defer msg.Close()
	}
	for _, rc := range t.env.Rcpts {
		if qmail.Valid(rc) != nil {
			t.cfg.Log.Errorf("recipient %q holds a NUL: not handed on", rc)
			return qmail.ExitFormat
		}
	}
	if qmail.Valid(t.env.Sender) != nil {
		t.cfg.Log.Errorf("sender holds a NUL: not handed on")
		return qmail.ExitFormat
	}
	if t.handOff != nil {
		return t.handOff(t.c.QmailQueue, msg, t.env)
	}
	if ownProcess {
		// Nothing to clean up (every spool file is unlinked, and the
		// exec closes them) and nothing to add to qmail-queue's status:
		// becoming it costs one process less, and its Received line
		// names this pid, as it does under qmail-qfilter.
		err := qmail.Exec(t.c.QmailQueue, msg, t.env)
		t.cfg.Log.Errorf("%v", err)
		return qmail.ExitTemp
	}
	extra := t.extraFiles()
	code, err := qmail.Queue(t.c.QmailQueue, msg, t.env, t.stderr, extra)
	for _, f := range extra {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		t.cfg.Log.Errorf("%v", err)
		return qmail.ExitTemp
	}
	if code != qmail.ExitQueued {
		t.cfg.Log.Warnf("%s exited %d: qmail-smtpd says %s", t.c.QmailQueue, code, qmail.Reply(code, ""))
	}
	return code
}

// extraFiles hands the custom error descriptor on, so a qmail-queue
// that writes one (another wrapper) still reaches qmail-smtpd.
func (t *qmailTxn) extraFiles() []*os.File {
	fd := t.errorFD
	if fd < 3 || fd > 16 {
		return nil
	}
	// A copy: the *os.File closes what it holds, and fd itself is
	// qmail-smtpd's.
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil
	}
	syscall.CloseOnExec(dup)
	extra := make([]*os.File, fd-2)
	extra[fd-3] = os.NewFile(uintptr(dup), "custom-error")
	return extra
}

// message is the message to hand on, at its first byte: the spool itself
// when the chain changed nothing in it, else a new spooled copy with the
// header changes made and the new body, if any. The envelope changes are
// made to t.env.
func (t *qmailTxn) message(r *bridge.Reply) (*os.File, error) {
	t.env.Sender, t.env.Rcpts = r.Sender, r.Rcpts
	var hdr []edit.Edit
	for _, e := range r.Edits {
		switch e.Kind {
		case edit.ChangeFrom, edit.AddRcpt, edit.DeleteRcpt: // in r.Sender, r.Rcpts
		default:
			hdr = append(hdr, e)
		}
	}
	if len(hdr) == 0 && r.Body == nil {
		_, err := t.spool.Seek(0, io.SeekStart)
		return t.spool, err
	}
	sp, err := spool.NewSpill(t.spoolDir, "mf-qq-out-*")
	if err != nil {
		return nil, err
	}
	if err := t.write(sp, hdr, r.Body); err != nil {
		sp.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	out := sp.File()
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// write writes the header with the edits made and the body. When every
// edit adds a field, the header is kept byte for byte and the fields go
// below it.
func (t *qmailTxn) write(w io.Writer, hdr []edit.Edit, body *spool.Message) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	onlyAdds := true
	for _, e := range hdr {
		onlyAdds = onlyAdds && e.Kind == edit.AddHeader
	}
	var bodyAt int64
	if onlyAdds {
		head := io.NewSectionReader(t.spool, 0, t.headLen)
		h, err := io.ReadAll(head)
		if err != nil {
			return err
		}
		// The header without its empty line, the new fields, the empty line.
		if bytes.HasSuffix(h, []byte("\n\n")) || string(h) == "\n" {
			h = h[:len(h)-1]
		}
		bw.Write(h)
		for _, e := range hdr {
			fmt.Fprintf(bw, "%s: %s\n", e.Name, e.Value)
		}
		bw.WriteByte('\n')
		bodyAt = t.headLen
	} else {
		for _, f := range edit.Apply(t.fields, hdr, 0) {
			fmt.Fprintf(bw, "%s: %s\n", f.Name, f.Value)
		}
		bw.WriteByte('\n')
		bodyAt = t.headLen
	}
	var src io.Reader
	if body != nil {
		rd, err := body.Reader()
		if err != nil {
			return err
		}
		src = spool.LF(rd)
	} else {
		st, err := t.spool.Stat()
		if err != nil {
			return err
		}
		src = io.NewSectionReader(t.spool, bodyAt, st.Size()-bodyAt)
	}
	if _, err := io.Copy(bw, src); err != nil {
		return err
	}
	return bw.Flush()
}

// quarantine holds the message as it came, with its envelope and the
// reason, and tells qmail-smtpd it was taken.
func (t *qmailTxn) quarantine(r *bridge.Reply) int {
	if t.c.QuarantineDir == "" {
		t.cfg.Log.Errorf("quarantine verdict (%s) but no --quarantine-dir: refused for now", r.Verdict.Reply.Text)
		return t.refuse(verdict.New(verdict.Tempfail, verdict.DefaultTempfail))
	}
	env := stream.Envelope{ClientAddr: t.addr, ClientName: t.host, Helo: t.helo, AuthUser: t.auth, MailFrom: r.Sender, Rcpts: r.Rcpts}
	if _, err := t.spool.Seek(0, io.SeekStart); err != nil {
		t.cfg.Log.Errorf("spool: %v", err)
		return qmail.ExitWrite
	}
	id, err := qmail.Quarantine{Dir: t.c.QuarantineDir}.Put(env, r.Verdict.Reply.Text, t.spool)
	if err != nil {
		t.cfg.Log.Errorf("%v", err)
		return t.refuse(verdict.New(verdict.Tempfail, verdict.DefaultTempfail))
	}
	t.cfg.Log.Infof("message from <%s> quarantined as %s: %s", t.env.Sender, id, r.Verdict.Reply.Text)
	return qmail.ExitQueued
}

// dotQmailCmd is a .qmail program line that loses nothing:
//
//	|mf-bridge dot-qmail
//	./Maildir/
//
// runs the chain of mf.conf (or, with arguments, that one stage, as
// "[OPTION=VALUE...] [--] PROGRAM [ARG...]") on the message qmail-local
// delivers, and answers in qmail-command(8)'s codes: 0 (go on to the next
// line) for accept and continue, 100 (bounce) for reject, 111 (defer) for
// tempfail and for every fault, 99 (done, skip the other lines) only for
// discard and for a message put in quarantine. The stage's stdout and
// stderr never reach qmail-local, which would put them in its log and the
// bounce: the only text it gets is the refusal's reply.
type dotQmailCmd struct {
	records
	QuarantineDir string   `type:"path" placeholder:"DIR" help:"The quarantine Maildir for a quarantine verdict (exit 99, held there); without it the message is delivered."`
	Stage         []string `arg:"" optional:"" passthrough:"" help:"One stage to run instead of the chain: [OPTION=VALUE...] [--] PROGRAM [ARG...]."`
}

// Exit codes of a .qmail program line, qmail-command(8).
const (
	dotNext  = 0   // delivered so far: the next line runs
	dotDone  = 99  // success, and the remaining lines do not run
	dotHard  = 100 // permanent failure: a bounce with what was printed
	dotDefer = 111 // temporary failure: qmail-send tries again
)

func (cmd *dotQmailCmd) Run(env *cli.Env, c *root) error {
	env.Code = cmd.run(env, c)
	return nil
}

func (cmd *dotQmailCmd) run(env *cli.Env, c *root) (code int) {
	// What is logged stays out of qmail-local's log and bounce: a stage's
	// failure names list files and lines, which a stranger must not read.
	log := logger.New("mf-bridge", io.Discard)
	if c.Syslog {
		log.OpenSyslog()
	}
	log.SetVerbose(c.Verbose)
	say := func(code int, text string) int {
		if text != "" {
			fmt.Fprintln(env.Stdout, text)
		}
		return code
	}
	defer func() {
		if p := recover(); p != nil {
			log.Errorf("internal error: %v", p)
			code = say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
		}
	}()
	srv := &server{log: log, stdout: io.Discard}
	g, err := srv.newGeneration(c, env.Config, env.LookupEnv)
	if err != nil {
		log.Errorf("%v", err)
		return say(dotDefer, "Temporary failure in the mail filter configuration (#4.3.5)")
	}
	cfg := *g.cfg
	if len(cmd.Stage) > 0 {
		st, err := oneStage(cmd.Stage)
		if err != nil {
			log.Errorf("%v", err)
			return say(dotDefer, "Temporary failure in the mail filter configuration (#4.3.5)")
		}
		ch := *cfg.Chain
		ch.Stages = []*chain.Stage{st}
		cfg.Chain = &ch
	}
	rec, err := bridge.OpenRecorder(cmd.DecisionLog, io.Discard)
	if err != nil {
		log.Errorf("%v", err)
		return say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
	}
	defer rec.Close()
	cfg.Records, cfg.Log, cfg.Hidden = rec, log, 0

	f, _, err := spool.Fill(c.SpoolDir, "mf-dot-*", env.Stdin)
	if err != nil {
		log.Errorf("%v", err)
		return say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
	}
	defer f.Close()

	// qmail-local gives no client: no TCPREMOTEIP, so lists of client
	// addresses and names cannot match here.
	sender, rcpt := env.Getenv("SENDER"), env.Getenv("RECIPIENT")
	s := bridge.NewSession(&cfg)
	defer s.Close()
	ctx := env.Ctx
	answer := func(r *bridge.Reply) (int, bool) {
		switch r.Verdict.Action {
		case verdict.Reject:
			return say(dotHard, dotText(r.Verdict.Reply)), true
		case verdict.Tempfail:
			return say(dotDefer, dotText(r.Verdict.Reply)), true
		}
		return 0, false
	}
	for _, step := range []func() *bridge.Reply{
		func() *bridge.Reply { return s.Connect(ctx, "", "", nil) },
		func() *bridge.Reply { return s.Helo(ctx, "", nil) },
		func() *bridge.Reply { return s.Mail(ctx, sender, nil) },
		func() *bridge.Reply { return s.Rcpt(ctx, rcpt, nil) },
	} {
		if code, done := answer(step()); done {
			return code
		}
	}
	br := bufio.NewReader(f)
	fields, first, err := bridge.ReadHeader(br)
	if err != nil {
		f.Seek(0, io.SeekStart)
		br.Reset(f)
		fields, first = nil, nil
	}
	if err := s.Feed(fields, first, br); err != nil {
		log.Errorf("read message: %v", err)
		return say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
	}
	r, err := s.EOM(ctx, nil)
	if err != nil {
		log.Errorf("%v", err)
		return say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
	}
	defer r.Close()
	if code, done := answer(r); done {
		return code
	}
	switch r.Verdict.Action {
	case verdict.Discard:
		return dotDone
	case verdict.Quarantine:
		if cmd.QuarantineDir == "" {
			log.Warnf("quarantine verdict (%s) with no --quarantine-dir: delivered", r.Verdict.Reply.Text)
			return dotNext
		}
		f.Seek(0, io.SeekStart)
		e := stream.Envelope{MailFrom: sender, Rcpts: []string{rcpt}}
		if _, err := (qmail.Quarantine{Dir: cmd.QuarantineDir}).Put(e, r.Verdict.Reply.Text, f); err != nil {
			log.Errorf("%v", err)
			return say(dotDefer, "Temporary failure in the mail filter (#4.3.0)")
		}
		return dotDone
	}
	// Accept and continue: the next line delivers. Header fields the
	// stages asked for cannot be added here (the next line reads the
	// message as qmail-local has it).
	return dotNext
}

// dotText is a refusal as qmail prints one: the reply's text, then its
// enhanced status code in qmail's "(#5.7.1)" form.
func dotText(r verdict.Reply) string {
	text := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, r.Text)
	if r.Status != "" {
		text += " (#" + r.Status + ")"
	}
	return strings.TrimSpace(text)
}

// oneStage is the stage "dot-qmail" is given as arguments, at data.
func oneStage(args []string) (*chain.Stage, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return chain.Parse("dot-qmail data " + strings.Join(q, " "))
}
