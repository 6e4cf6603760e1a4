package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mf/lib/flock"
)

// Shards is the number of shard files of the directory backend. An
// operation reads its whole shard, so with 10^6 live keys 256 shards made
// an add cost eight times what it does in a small store, 1024 about five
// times; a scan of every key reads every shard, which is for the commands
// a person runs. See mf-state(5).
const Shards = 1024

// compactAt is the shard size below which a shard is never compacted:
// appending is cheap, rewriting is what costs.
const compactAt = 8 << 10

// fileMagic begins every shard; the 8 bytes after it hold the shard's
// size when it was last compacted (0 for a shard never compacted).
var fileMagic = []byte("mfkv\x00\x03")

const headerLen = 6 + 8

// ErrCorrupt is wrapped when a shard file does not start as one should.
// A torn last record (a write cut short by a crash) is not corruption: its
// checksum fails and it is ignored.
var ErrCorrupt = errors.New("corrupt state shard")

type rec struct {
	val []byte
	exp int64 // unix milliseconds; 0 never; -1 in a record that deletes
}

func (r rec) live(now int64) bool { return r.exp == 0 || r.exp > now }

// dirStore keeps the keys in Shards files. A shard is a log: every change
// is one record appended with a single write(2) under the shard's flock(2),
// each record carrying its own CRC-32C, so a writer killed at any point
// leaves at worst a torn last record, which readers skip and the next
// writer cuts off. An operation on one key reads the shard and looks for
// the key's last record without building a map of the shard. Once a
// shard has grown to twice its size after the last compaction it is
// compacted: its live entries are written to a temporary file that is
// renamed over it. Appending instead of rewriting is what makes an update
// cost tens of microseconds instead of the ~150 a rename costs on ext4.
type dirStore struct {
	dir     string
	timeout time.Duration
	now     func() time.Time
	warnf   func(format string, args ...any)
}

// OpenDir opens the directory backend in dir. The directory is created
// by the first write: a store nobody wrote to reads as empty, so a stage
// run by a user who cannot create it still works.
func OpenDir(dir string, timeout time.Duration, opts ...Option) (Store, error) {
	s := &dirStore{dir: dir, timeout: timeout, now: time.Now, warnf: stderrWarnf}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func shardOf(key string) int {
	if f := Family(key); f != "" {
		key = f
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % Shards)
}

func (s *dirStore) path(i int) string { return filepath.Join(s.dir, fmt.Sprintf("%03x.kv", i)) }

func expAt(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixMilli()
}

func (s *dirStore) Close() error { return nil }

// FileOf is the shard that holds the family's entries (Filer).
func (s *dirStore) FileOf(family string) string { return s.path(shardOf(family)) }

// read returns shard i's bytes; a missing shard (or directory) is empty.
func (s *dirStore) read(i int) ([]byte, error) {
	f, err := os.OpenFile(s.path(i), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	return readRegular(f)
}

// readRegular reads a whole shard, refusing one that is not a plain
// file: reading a FIFO put in its place would block for ever. The buffer
// starts at the file's size, as os.ReadFile's does, where io.ReadAll
// grew one from 512 bytes in several allocations.
func readRegular(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("state: %s: not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	b := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	if _, err := b.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return b.Bytes(), nil
}

// walk calls fn on every whole record of a shard, in order. A shard is
// the header, then records of uvarint body length, body, CRC-32C of the
// body; a body is the key (uvarint length and bytes), the expiry
// (varint) and the value (uvarint length and bytes).
//
// Bytes that are no record followed by a record are damage (a disk
// error, a stray write): walk skips them to the next whole record, and
// the records after them count as before. Bytes that are no record at
// the end are a torn tail (a writer killed mid-write), which the next
// writer cuts off.
func walk(data []byte, fn func(key []byte, r rec)) (walked, error) {
	if len(data) < headerLen && bytes.HasPrefix(fileMagic, data[:min(len(data), len(fileMagic))]) {
		return walked{}, nil // created by a writer killed before its first write
	}
	if len(data) < headerLen || !bytes.HasPrefix(data, fileMagic) {
		return walked{}, ErrCorrupt
	}
	w := walked{base: int64(binary.BigEndian.Uint64(data[len(fileMagic):])), good: headerLen}
	for off := headerLen; off < len(data); {
		if key, r, n, ok := record(data[off:]); ok {
			fn(key, r)
			off += n
			w.good = int64(off)
			continue
		}
		next := -1
		for q := off + 1; q < len(data); q++ {
			if _, _, _, ok := record(data[q:]); ok {
				next = q
				break
			}
		}
		if next < 0 {
			break // the torn tail
		}
		w.damage = append(w.damage, damage{int64(off), int64(next - off)})
		off = next
	}
	return w, nil
}

// walked is what a walk found besides the records: the shard's base
// (its size after the last compaction), the end of its last whole
// record, and the damage it skipped.
type walked struct {
	base, good int64
	damage     []damage
}

// damage is a run of bytes in the middle of a shard that is no record.
type damage struct{ off, n int64 }

func (w walked) damaged() string {
	var b strings.Builder
	for i, d := range w.damage {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d bytes at offset %d", d.n, d.off)
	}
	return b.String()
}

// record reads the record at the start of p and its length.
func record(p []byte) (key []byte, r rec, n int, ok bool) {
	l, k := binary.Uvarint(p)
	if k <= 0 || l > uint64(len(p)-k) || uint64(len(p)-k)-l < 4 {
		return nil, rec{}, 0, false
	}
	body := p[k : k+int(l)]
	// The body's shape first: it costs a few varints where the checksum
	// costs the body, and looking for the record after damage tries
	// every offset.
	key, exp, val, ok := decodeBody(body)
	if !ok || crc32.Checksum(body, castagnoli()) != binary.BigEndian.Uint32(p[k+int(l):]) {
		return nil, rec{}, 0, false
	}
	return key, rec{val, exp}, k + int(l) + 4, true
}

// shard is one shard as read in full: its entries, expired ones still
// in, the length of its whole records, its size on disk and its damage.
type shard struct {
	m          map[string]rec
	good, size int64
	damage     []damage
}

func decode(data []byte) (shard, error) {
	sh := shard{m: map[string]rec{}, size: int64(len(data))}
	w, err := walk(data, func(key []byte, r rec) {
		if r.exp < 0 {
			delete(sh.m, string(key))
		} else {
			sh.m[string(key)] = rec{bytes.Clone(r.val), r.exp}
		}
	})
	sh.good, sh.damage = w.good, w.damage
	return sh, err
}

// find returns key's last record in a shard, and what walk returns.
func find(data []byte, key string) (r rec, found bool, w walked, err error) {
	w, err = walk(data, func(k []byte, x rec) {
		if string(k) == key {
			r, found = x, x.exp >= 0
		}
	})
	return r, found, w, err
}

func (s *dirStore) load(i int) (shard, error) {
	data, err := s.read(i)
	if err != nil {
		return shard{}, err
	}
	sh, err := decode(data)
	if err != nil {
		return shard{}, fmt.Errorf("state: %s: %w", s.path(i), err)
	}
	return sh, nil
}

// damaged reports damage a reader found in shard i, and has it mended
// by a rewrite if the lock comes soon: the records after the damage
// stay, the damage goes.
func (s *dirStore) damaged(i int, w walked) {
	s.warnf("state: %s: damaged: %s skipped, the records after kept", s.path(i), w.damaged())
	if err := s.mend(i); err != nil {
		s.warnf("state: %s: not mended: %v", s.path(i), err)
	}
}

// mend rewrites shard i without its damage. It tries the lock once:
// a reader takes no lock and must not wait for one, and a writer that
// holds it mends the shard itself.
func (s *dirStore) mend(i int) error {
	unlock, err := s.lockWait(i, 0)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := s.read(i)
	if err != nil {
		return err
	}
	sh, err := decode(data)
	if err != nil || len(sh.damage) == 0 {
		return err
	}
	return s.compact(i, sh.m)
}

func decodeBody(b []byte) (key []byte, exp int64, val []byte, ok bool) {
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	if key, ok = field(); !ok {
		return
	}
	exp, k := binary.Varint(b)
	if k <= 0 {
		return nil, 0, nil, false
	}
	b = b[k:]
	if val, ok = field(); !ok || len(b) != 0 {
		return nil, 0, nil, false
	}
	return key, exp, val, true
}

func appendRecord(out []byte, key string, r rec) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(key)))
	body = append(body, key...)
	body = binary.AppendVarint(body, r.exp)
	body = binary.AppendUvarint(body, uint64(len(r.val)))
	body = append(body, r.val...)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli()))
}

var deleted = rec{exp: -1}

// castagnoli is CRC-32C, which the CPU computes (SSE 4.2) even for the
// short records here. Its table is made on first use: a process that
// finds no shard to read (mf-lists with no dynamic lists) skips the cost.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// update runs fn on key's live entry (ok false if there is none) under
// shard lock; if fn asks, its result (deleted to delete) is appended, or
// the shard compacted with it.
func (s *dirStore) update(key string, fn func(cur rec, ok bool, now int64) (rec, bool)) error {
	i := shardOf(key)
	unlock, err := s.lock(i)
	if err != nil {
		return err
	}
	defer unlock()
	// One descriptor for the read and the append: opening is a good part
	// of an operation's cost.
	f, err := os.OpenFile(s.path(i), os.O_RDWR|os.O_CREATE|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	data, err := readRegular(f)
	if err != nil {
		return err
	}
	if err := Own(s.path(i)); err != nil {
		return err
	}
	cur, ok, w, err := find(data, key)
	if err != nil {
		return fmt.Errorf("state: %s: %w", s.path(i), err)
	}
	now := s.now().UnixMilli()
	if ok && !cur.live(now) {
		ok = false
	}
	next, write := fn(cur, ok, now)
	if !write {
		return nil
	}
	r := appendRecord(nil, key, next)
	if len(w.damage) == 0 && int64(len(data)+len(r)) <= max(compactAt, 2*w.base) {
		return appendTo(f, data, w.good, r)
	}
	// Compacted, or rewritten to drop damage: the records after the
	// damage are kept, unlike a torn tail's bytes.
	sh, err := decode(data)
	if err != nil {
		return err
	}
	if len(sh.damage) > 0 {
		s.warnf("state: %s: damaged: %s dropped, the records after kept", s.path(i), w.damaged())
	}
	if next.exp < 0 {
		delete(sh.m, key)
	} else {
		sh.m[key] = next
	}
	dropExpired(sh.m, now)
	return s.compact(i, sh.m)
}

func dropExpired(m map[string]rec, now int64) int {
	n := 0
	for k, r := range m {
		if !r.live(now) {
			delete(m, k)
			n++
		}
	}
	return n
}

// appendTo adds a record to a shard after its good bytes: a torn tail
// a crash left is cut off first.
func appendTo(f *os.File, data []byte, good int64, r []byte) error {
	if good == 0 {
		r = append(binary.BigEndian.AppendUint64(append([]byte(nil), fileMagic...), 0), r...)
	}
	if good < int64(len(data)) {
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	if _, err := f.WriteAt(r, good); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// compact replaces shard i by the entries of m. The lock holder is the
// only writer, so the temporary file has a fixed name: one a killed
// writer left behind is simply overwritten. There is no fsync: the store
// holds soft state, and ext4 and xfs flush a file replaced by rename
// before the rename itself.
func (s *dirStore) compact(i int, m map[string]rec) error {
	p := s.path(i)
	if len(m) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
		return nil
	}
	b := append(append([]byte(nil), fileMagic...), make([]byte, 8)...)
	for k, r := range m {
		b = appendRecord(b, k, r)
	}
	binary.BigEndian.PutUint64(b[len(fileMagic):], uint64(len(b)))
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := Own(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// lock takes shard i's lock file (lib/flock: waiters queue in the
// kernel), creating the directory on the first write.
func (s *dirStore) lock(i int) (func(), error) { return s.lockWait(i, s.timeout) }

func (s *dirStore) lockWait(i int, timeout time.Duration) (func(), error) {
	p := filepath.Join(s.dir, fmt.Sprintf("%03x.lock", i))
	l, err := flock.Acquire(p, timeout)
	if errors.Is(err, fs.ErrNotExist) {
		if err = MkdirAll(s.dir, 0o755); err == nil {
			l, err = flock.Acquire(p, timeout)
		}
	}
	if errors.Is(err, flock.ErrTimeout) {
		return nil, fmt.Errorf("state: %w: %w", ErrTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := Own(p); err != nil {
		l.Release()
		return nil, err
	}
	return func() { l.Release() }, nil
}

func (s *dirStore) Add(_ context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	var v int64
	err := s.update(key, func(cur rec, ok bool, now int64) (rec, bool) {
		if ok {
			v, _ = strconv.ParseInt(string(cur.val), 10, 64)
		} else {
			cur.exp = expAt(time.UnixMilli(now), ttl)
		}
		v += n
		return rec{strconv.AppendInt(nil, v, 10), cur.exp}, true
	})
	return v, err
}

func (s *dirStore) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	return s.update(key, func(_ rec, _ bool, now int64) (rec, bool) {
		return rec{val, expAt(time.UnixMilli(now), ttl)}, true
	})
}

func (s *dirStore) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	set := false
	err := s.update(key, func(_ rec, ok bool, now int64) (rec, bool) {
		set = !ok
		return rec{val, expAt(time.UnixMilli(now), ttl)}, set
	})
	return set, err
}

func entry(k string, r rec) Entry {
	e := Entry{Key: k, Value: r.val}
	if r.exp != 0 {
		e.Expires = time.UnixMilli(r.exp)
	}
	return e
}

// Get reads without the lock: a shard only ever grows by whole records
// (a torn one is skipped) or is replaced whole.
func (s *dirStore) Get(_ context.Context, key string) (Entry, bool, error) {
	data, err := s.read(shardOf(key))
	if err != nil {
		return Entry{}, false, err
	}
	r, ok, w, err := find(data, key)
	if err != nil {
		return Entry{}, false, fmt.Errorf("state: %s: %w", s.path(shardOf(key)), err)
	}
	if len(w.damage) > 0 {
		s.damaged(shardOf(key), w)
	}
	if !ok || !r.live(s.now().UnixMilli()) {
		return Entry{}, false, nil
	}
	return entry(key, rec{bytes.Clone(r.val), r.exp}), true, nil
}

func (s *dirStore) Scan(_ context.Context, prefix string) ([]Entry, error) {
	now := s.now().UnixMilli()
	// A prefix naming a family is in that family's shard alone, worked
	// out once: hashing the family again for each of the 1024 shards was
	// most of what reading a dynamic list cost.
	lo, hi := 0, Shards
	if f := Family(prefix); f != "" {
		lo = shardOf(f)
		hi = lo + 1
	}
	var out []Entry
	for i := lo; i < hi; i++ {
		sh, err := s.load(i)
		if err != nil {
			return nil, err
		}
		if len(sh.damage) > 0 {
			s.damaged(i, walked{damage: sh.damage})
		}
		for k, r := range sh.m {
			if strings.HasPrefix(k, prefix) && r.live(now) {
				out = append(out, entry(k, r))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *dirStore) Delete(_ context.Context, key string) (bool, error) {
	found := false
	err := s.update(key, func(_ rec, ok bool, _ int64) (rec, bool) {
		found = ok
		return deleted, ok
	})
	return found, err
}

// A lease set is a record whose value holds one "id expiry-ms" line per
// slot.
func parseLeases(b []byte, now int64) map[string]int64 {
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		id, exp, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if e, err := strconv.ParseInt(exp, 10, 64); err == nil && e > now {
			out[id] = e
		}
	}
	return out
}

func formatLeases(ls map[string]int64) []byte {
	var b []byte
	for id, e := range ls {
		b = fmt.Appendf(b, "%s %d\n", id, e)
	}
	return b
}

var leaseID = strings.NewReplacer(" ", "%20", "\n", "%0A", "%", "%25")

func (s *dirStore) Lease(_ context.Context, key, id string, limit int, ttl time.Duration) (bool, int, error) {
	ok, n := false, 0
	id = leaseID.Replace(id)
	err := s.update(key, func(cur rec, _ bool, now int64) (rec, bool) {
		ls := parseLeases(cur.val, now)
		if _, held := ls[id]; held || len(ls) < limit {
			ls[id] = now + ttl.Milliseconds()
			ok = true
		}
		n = len(ls)
		var latest int64
		for _, e := range ls {
			latest = max(latest, e)
		}
		return rec{formatLeases(ls), latest}, true
	})
	return ok, n, err
}

func (s *dirStore) Release(_ context.Context, key, id string) error {
	id = leaseID.Replace(id)
	return s.update(key, func(cur rec, ok bool, now int64) (rec, bool) {
		if !ok {
			return rec{}, false
		}
		ls := parseLeases(cur.val, now)
		delete(ls, id)
		if len(ls) == 0 {
			return deleted, true
		}
		return rec{formatLeases(ls), cur.exp}, true
	})
}

// Expire compacts every shard that holds expired entries.
func (s *dirStore) Expire(context.Context) (int, error) {
	total := 0
	for i := range Shards {
		if _, err := os.Stat(s.path(i)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		n, err := s.expire(i)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *dirStore) expire(i int) (int, error) {
	unlock, err := s.lock(i)
	if err != nil {
		return 0, err
	}
	defer unlock()
	sh, err := s.load(i)
	if err != nil {
		return 0, err
	}
	n := dropExpired(sh.m, s.now().UnixMilli())
	if len(sh.damage) > 0 {
		s.warnf("state: %s: damaged: %s dropped, the records after kept", s.path(i), walked{damage: sh.damage}.damaged())
	} else if n == 0 {
		return 0, nil
	}
	return n, s.compact(i, sh.m)
}
