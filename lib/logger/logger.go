// Package logger writes a command's diagnostics: to stderr as
// "mf-lists: level: message", and to syslog (facility mail) when asked.
// stdout is for data only, so nothing here ever touches it.
package logger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/syslog"
	"strings"
	"sync"
	"time"
)

// Logger is safe for concurrent use.
type Logger struct {
	prog    string
	mu      sync.Mutex
	w       io.Writer
	sys     *syslog.Writer
	verbose bool
	json    bool
	now     func() time.Time
}

// SetJSON writes each stderr line as a JSON object, {"time", "prog",
// "level", "msg"}, for a log collector; syslog lines stay text.
func (l *Logger) SetJSON(on bool) { l.json = on }

// New logs as prog to w.
func New(prog string, w io.Writer) *Logger { return &Logger{prog: prog, w: w} }

// SetVerbose turns debugging lines on or off.
func (l *Logger) SetVerbose(v bool) { l.verbose = v }

// OpenSyslog also sends every line to the local syslog, facility mail.
func (l *Logger) OpenSyslog() error {
	s, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, l.prog)
	if err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	l.sys = s
	return nil
}

// Close closes the syslog connection, if any.
func (l *Logger) Close() error {
	if l.sys != nil {
		return l.sys.Close()
	}
	return nil
}

func (l *Logger) log(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// A message may quote a stranger's bytes; one diagnostic stays one line.
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		now := time.Now
		if l.now != nil {
			now = l.now
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "<a@example.org>" as it is
		enc.Encode(struct {
			Time  string `json:"time"`
			Prog  string `json:"prog"`
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}{now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"), l.prog, level, msg})
		l.w.Write(b.Bytes()) // one write a line
	} else {
		fmt.Fprintf(l.w, "%s: %s: %s\n", l.prog, level, msg)
	}
	if l.sys == nil {
		return
	}
	switch level {
	case "error":
		l.sys.Err(msg)
	case "warning":
		l.sys.Warning(msg)
	case "debug":
		l.sys.Debug(msg)
	default:
		l.sys.Info(msg)
	}
}

func (l *Logger) Errorf(format string, args ...any) { l.log("error", format, args...) }
func (l *Logger) Warnf(format string, args ...any)  { l.log("warning", format, args...) }
func (l *Logger) Infof(format string, args ...any)  { l.log("info", format, args...) }

// Debugf logs only when verbose.
func (l *Logger) Debugf(format string, args ...any) {
	if l.verbose {
		l.log("debug", format, args...)
	}
}
