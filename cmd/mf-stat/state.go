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
)

// cronState is what --offsets remembers per log: the file's inode, a
// fingerprint of its first line (which survives renaming and
// compression), and how far it was read. Lines past the offset are new;
// a line without its newline yet is left for the next run.
type cronState struct {
	Version int                  `json:"version"`
	Logs    map[string]*logState `json:"logs"`

	path string
	lock *flock.Lock
	cur  map[string]*input // log -> the input reading it this run
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

func inode(path string) uint64 {
	fi, err := os.Stat(path)
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
	for _, f := range files {
		if f == "-" {
			return nil, errors.New("--offsets needs log files, not stdin")
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		in := &input{name: f, path: f}
		first, t, err := head(in, p)
		if err != nil {
			return nil, err
		}
		in.first = t
		fp := fingerprint(first)
		in.head = fp
		prev := st.Logs[abs]
		if prev != nil && prev.Head == fp && fp != "" {
			in.offset = prev.Offset
			if fi, err := os.Stat(f); err == nil && fi.Size() < prev.Offset && !compressedFile(f) {
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

func compressedFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	n, _ := f.Read(magic[:])
	return compressed(magic[:n])
}

// findRotated looks beside log for the file that was log at the last
// run: the same inode, or, once compressed, the same first line.
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
		in := &input{name: n, path: n, offset: prev.Offset}
		if inode(n) != prev.Inode || compressedFile(n) {
			first, _, err := head(in, p)
			if err != nil || fingerprint(first) != prev.Head {
				continue
			}
		}
		_, in.first, _ = head(&input{name: n, path: n}, p)
		in.whole = true // it will not grow any more
		return in
	}
	return nil
}

// save writes what was read this run; logs not named this run are kept.
func (st *cronState) save() error {
	defer st.lock.Release()
	for abs, in := range st.cur {
		st.Logs[abs] = &logState{Inode: inode(in.path), Head: in.head, Offset: in.end}
	}
	data, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return err
	}
	return safeio.WriteFile(st.path, append(data, '\n'), 0o644)
}
