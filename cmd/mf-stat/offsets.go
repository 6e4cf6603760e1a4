package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"mf/lib/flock"
	"mf/lib/maillog"
	"mf/lib/safeio"
	"mf/lib/summary"
)

// cronState is the offsets file of --offsets. Per log: the file's
// inode, a fingerprint of its first line (which survives renaming and
// compression), and how far it was read; lines past the offset are new,
// a line without its newline yet is left for the next run. Beside them,
// the messages still in flight (summary.State), so that a message whose
// lines straddle two runs is joined as in one run, and the last run's
// totals, for the change against the previous period.
type cronState struct {
	Version  int                  `json:"version"`
	Logs     map[string]*logState `json:"logs"`
	Previous *previous            `json:"previous,omitempty"`
	Flight   *summary.State       `json:"in_flight,omitempty"`

	path string
	lock *flock.Lock
	cur  map[string]*input // log -> the input reading it this run
}

// previous is what the last run reported.
type previous struct {
	From   string         `json:"from,omitempty"`
	To     string         `json:"to,omitempty"`
	Totals summary.Totals `json:"totals"`
}

type logState struct {
	Inode  uint64 `json:"inode"`
	Head   string `json:"head"`
	Offset int64  `json:"offset"`
}

func fingerprint(first []byte) string {
	if len(first) == 0 {
		return ""
	}
	h := sha256.Sum256(first)
	return hex.EncodeToString(h[:12])
}

func fileInode(f *os.File) uint64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// loadState locks and reads the state file; a missing file is a first run.
func loadState(path string, timeout time.Duration) (*cronState, error) {
	l, err := flock.Acquire(path+".lock", timeout)
	if err != nil {
		return nil, fmt.Errorf("--offsets: %w", err)
	}
	st := &cronState{Version: 1, Logs: map[string]*logState{}, path: path, lock: l, cur: map[string]*input{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err == nil {
		err = json.Unmarshal(data, st)
	}
	if err != nil || st.Logs == nil {
		l.Release()
		if err == nil {
			err = errors.New("no logs")
		}
		return nil, fmt.Errorf("--offsets %s: %w", path, err)
	}
	return st, nil
}

// stateInputs decides what to read of each log. A log whose first line
// changed was rotated: the rest of its old self is read first, found
// beside it by the remembered first line (mail.log.1, mail.log-20261123.gz),
// then the new file from its start.
func stateInputs(st *cronState, files []string, p *maillog.Parser) ([]*input, error) {
	var ins []*input
	fail := func(err error) ([]*input, error) {
		for _, in := range ins {
			in.close()
		}
		return nil, err
	}
	for _, f := range files {
		if f == "-" {
			return fail(errors.New("--offsets needs log files, not stdin"))
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return fail(err)
		}
		in, err := openInput(f, f, nil, p)
		if err != nil {
			return fail(err)
		}
		fp := fingerprint(in.firstLine)
		in.head = fp
		prev := st.Logs[abs]
		if prev != nil && prev.Head == fp && fp != "" {
			in.offset = prev.Offset
			if fi, err := in.f.Stat(); err == nil && fi.Size() < prev.Offset && in.plain {
				in.offset = 0 // truncated in place and written again
			}
		} else if prev != nil && prev.Head != "" {
			if old := findRotated(f, prev, p); old != nil {
				ins = append(ins, old)
			}
		}
		if fp == "" {
			in.offset = 0 // not one whole line yet: nothing to read, nothing to remember
		}
		ins = append(ins, in)
		st.cur[abs] = in
	}
	orderInputs(ins)
	return ins, nil
}

// findRotated looks beside log for the file that was log at the last
// run: the same first line, renamed, compressed or copied.
// Each candidate is opened once; the one found is read from that opening.
func findRotated(log string, prev *logState, p *maillog.Parser) *input {
	dir, base := filepath.Split(log)
	if dir == "" {
		dir = "."
	}
	names, _ := filepath.Glob(filepath.Join(dir, base+"*"))
	sort.Strings(names)
	for _, n := range names {
		if filepath.Base(n) == base || strings.HasSuffix(n, ".lock") {
			continue
		}
		in, err := openInput(n, n, nil, p)
		if err != nil {
			continue
		}
		if fingerprint(in.firstLine) != prev.Head {
			in.close()
			continue
		}
		in.offset = prev.Offset
		in.whole = true // it will not grow any more
		return in
	}
	return nil
}

// save writes what was read this run, and what is still in flight;
// logs not named this run are kept. The file is written to a temporary
// beside it and renamed over it, so a crash leaves the old or the new.
func (st *cronState) save(flight *summary.State, r *summary.Report) error {
	defer st.lock.Release()
	for abs, in := range st.cur {
		st.Logs[abs] = &logState{Inode: fileInode(in.f), Head: in.head, Offset: in.end}
	}
	st.Flight = flight
	if r.From != "" {
		st.Previous = &previous{From: r.From, To: r.To, Totals: r.Totals}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := safeio.WriteFile(st.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--offsets: %w", err)
	}
	return nil
}
