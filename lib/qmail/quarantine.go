package qmail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mf/lib/stream"
	"mf/lib/verdict"
)

// Quarantine is a Maildir of held messages. Each file is an mf stream:
// the envelope block (sender, recipients, client, and the quarantine
// verdict with its reason), then the message as it came, so that
// "mf-bridge test" reads it and a release hands back exactly what was held.
type Quarantine struct{ Dir string }

// Held is one message in the quarantine.
type Held struct {
	ID     string // the file's name in new/ or cur/
	Path   string
	Time   time.Time
	Size   int64
	Env    stream.Envelope
	Reason string
}

var seq atomic.Int64

// Init makes the Maildir's three directories.
func (q Quarantine) Init() error {
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(q.Dir, d), 0o700); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	return nil
}

// Put holds msg with env and the reason; it is in new/ only once it is
// complete and on disk (Maildir's tmp, fsync, rename).
func (q Quarantine) Put(env stream.Envelope, reason string, msg io.Reader) (string, error) {
	if err := q.Init(); err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	now := time.Now()
	id := fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), seq.Add(1), host)
	tmp := filepath.Join(q.Dir, "tmp", id)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	env.Phase = stream.Data
	v := verdict.Verdict{Action: verdict.Quarantine, Reply: verdict.Reply{Text: reason}}
	env.Verdict = &v
	w := bufio.NewWriterSize(f, 64<<10)
	if err := stream.Write(w, &env); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if _, err := io.Copy(w, msg); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(q.Dir, "new", id)); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	ok = true
	if d, err := os.Open(filepath.Join(q.Dir, "new")); err == nil {
		d.Sync()
		d.Close()
	}
	return id, nil
}

// List is every held message, oldest first. A file that is not an mf
// stream is listed with its error as the reason, never skipped.
func (q Quarantine) List() ([]*Held, error) {
	var out []*Held
	for _, d := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(q.Dir, d))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			h, err := q.stat(filepath.Join(q.Dir, d, e.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (q Quarantine) stat(path string) (*Held, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	h := &Held{ID: filepath.Base(path), Path: path, Time: st.ModTime(), Size: st.Size()}
	if sec, _, ok := strings.Cut(h.ID, "."); ok {
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
			h.Time = time.Unix(n, 0)
		}
	}
	s, err := stream.Read(f, stream.StreamInput, stream.Envelope{})
	if err != nil {
		h.Reason = "unreadable: " + err.Error()
		return h, nil
	}
	h.Env = s.Env
	if s.Env.Verdict != nil {
		h.Reason = s.Env.Verdict.Reply.Text
	}
	return h, nil
}

// Find is the held message named id (its file name, or a unique prefix).
func (q Quarantine) Find(id string) (*Held, error) {
	if id == "" || strings.ContainsAny(id, "/") || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("quarantine: bad id %q", id)
	}
	all, err := q.List()
	if err != nil {
		return nil, err
	}
	var found *Held
	for _, h := range all {
		if h.ID == id {
			return h, nil
		}
		if strings.HasPrefix(h.ID, id) {
			if found != nil {
				return nil, fmt.Errorf("quarantine: %s names more than one message", id)
			}
			found = h
		}
	}
	if found == nil {
		return nil, fmt.Errorf("quarantine: no message %s in %s", id, q.Dir)
	}
	return found, nil
}

// Open gives the held message's envelope and a reader at the first byte
// of the message as it came.
func (h *Held) Open() (*os.File, *stream.Stream, error) {
	f, err := os.Open(h.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("quarantine: %w", err)
	}
	s, err := stream.Read(f, stream.StreamInput, stream.Envelope{})
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("quarantine: %s: %w", h.ID, err)
	}
	return f, s, nil
}

// Remove deletes the held message.
func (h *Held) Remove() error {
	if err := os.Remove(h.Path); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}
