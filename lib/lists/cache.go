package lists

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"mf/lib/flock"
	"mf/lib/name"
	"mf/lib/resident"
	"mf/lib/safeio"
	"mf/lib/state"
)

// Options say where compiled lists are cached.
type Options struct {
	// CacheDir holds compiled images, one per list file, named by a hash
	// of the list's path. Empty: compile in memory every time.
	CacheDir    string
	LockTimeout time.Duration
	// Debugf, if set, hears why a cache was not used.
	Debugf func(format string, args ...any)
}

func (o *Options) debugf(format string, args ...any) {
	if o.Debugf != nil {
		o.Debugf(format, args...)
	}
}

func statSource(fi os.FileInfo) source {
	st, _ := fi.Sys().(*syscall.Stat_t)
	s := source{size: uint64(fi.Size()), mtime: uint64(fi.ModTime().UnixNano())}
	if st != nil {
		s.ctime = uint64(st.Ctim.Nano())
		s.ino = st.Ino
		s.dev = st.Dev
	}
	return s
}

// Open returns the compiled list for the file at path: from the cache
// when the cache was compiled from the file as it is now (same size,
// times, inode and device) and after those times could be trusted
// (resident.Unsettled), otherwise compiled afresh and, under a lock so
// that concurrent stages compile once, written back atomically.
func Open(path string, o Options) (*List, error) {
	// The name goes into traces ("list=NAME"), logs and tag fields.
	if err := name.Valid(ListName(path)); err != nil {
		return nil, fmt.Errorf("%s: list %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	src := statSource(fi)
	if o.CacheDir == "" {
		return compileFile(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	cache := filepath.Join(o.CacheDir, hex.EncodeToString(sum[:12])+".img")
	if l := openCache(cache, path, src, &o); l != nil {
		return l, nil
	}
	// Made by root (mf-lists why, run by hand), the cache still belongs
	// to the state directory's owner, who runs the stages.
	if err := state.MkdirAll(o.CacheDir, 0o755); err != nil {
		o.debugf("no list cache: %v", err)
		return compileFile(path)
	}
	lock, err := flock.Acquire(cache+".lock", o.LockTimeout)
	if errors.Is(err, flock.ErrTimeout) {
		return nil, err
	}
	if err != nil {
		o.debugf("no list cache: %v", err)
		return compileFile(path)
	}
	defer lock.Release()
	if err := state.Own(cache + ".lock"); err != nil {
		o.debugf("list cache: %v", err)
	}
	if l := openCache(cache, path, src, &o); l != nil {
		return l, nil // compiled by another process while we waited
	}
	l, img, err := compileImage(path)
	if err != nil {
		return nil, err
	}
	if err := safeio.WriteFile(cache, img, 0o644); err != nil {
		o.debugf("list cache not written: %v", err)
	} else if err := state.Own(cache); err != nil {
		o.debugf("list cache: %v", err)
	}
	return l, nil
}

// openCache maps a cached image, if it was made from src.
func openCache(cache, path string, src source, o *Options) *List {
	f, err := os.Open(cache)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < headerLen+4 || fi.Size() > 1<<32 {
		return nil
	}
	img, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		o.debugf("list cache %s: %v", cache, err)
		return nil
	}
	// The image is replaced by rename, never written in place, so the
	// mapping stays valid for the life of the process.
	l, err := openImage(img, path)
	switch changed := time.Unix(0, int64(src.ctime)); {
	case err != nil:
		o.debugf("list cache %s: %v", cache, err)
	case l.src != src:
		// Compiled from another version of the list.
	case resident.Unsettled(changed, l.compiled):
		// Read within one step of the file clock after the list was
		// written: written again since at the same size, it would have
		// the same times, so the image cannot tell its version. It is
		// made again until one is made from a list that had settled.
		o.debugf("list cache %s: compiled %v after the list changed, too soon to tell its version", cache, l.compiled.Sub(changed).Round(time.Millisecond))
	default:
		l.fromDisk = true
		return l
	}
	syscall.Munmap(img)
	return nil
}

func compileFile(path string) (*List, error) {
	l, _, err := compileImage(path)
	return l, err
}

// compileImage parses the list file and builds its image. The file is
// stat'ed through the descriptor it is read from, so the image records the
// version it holds, and when it began to be read.
func compileImage(path string) (*List, []byte, error) {
	compiled := time.Now()
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	def, entries, err := parse(path, io.Reader(f), fi.Size())
	if err != nil {
		return nil, nil, err
	}
	img := compile(def, entries, statSource(fi), compiled)
	l, err := openImage(img, path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, img, nil
}

// regular refuses what is not a plain file: a FIFO would block the stage
// for ever, a device would be read without end.
func regular(path string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return fmt.Errorf("%s: is a directory", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	return nil
}

// openRegular opens a list file for reading, without blocking on a FIFO
// put where the file was, and refuses anything but a regular file.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = regular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
