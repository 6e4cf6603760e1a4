package lists

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mf/lib/flock"
	"mf/lib/resident"
)

const cacheListText = "match: client-addr sender\naction: block\n192.0.2.0/24\n@example.org\n"

type cacheEnv struct {
	dir, path, cacheDir string
	o                   Options
	debug               *[]string
}

func newCacheEnv(t *testing.T) *cacheEnv {
	t.Helper()
	dir := t.TempDir()
	var debug []string
	var mu sync.Mutex
	e := &cacheEnv{
		dir:      dir,
		path:     writeList(t, dir, "block.list", cacheListText),
		cacheDir: filepath.Join(dir, "state", "lists"),
		debug:    &debug,
	}
	e.o = Options{CacheDir: e.cacheDir, LockTimeout: time.Second, Debugf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		debug = append(debug, fmt.Sprintf(f, a...))
	}}
	settle(t, e.path)
	return e
}

// settle waits until the file at path has settled (resident.Unsettled):
// an image compiled from it then is trusted.
func settle(t testing.TB, path string) {
	t.Helper()
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		changed := time.Unix(0, fi.Sys().(*syscall.Stat_t).Ctim.Nano())
		if !resident.Unsettled(changed, time.Now()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// open opens the list and checks that it answers as the file now says,
// compiled afresh in memory.
func (e *cacheEnv) open(t *testing.T) *List {
	t.Helper()
	l, err := Open(e.path, e.o)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(e.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{
		{ClientAddr: "192.0.2.9"}, {ClientAddr: "192.0.3.1"}, {ClientAddr: "198.51.100.1"},
		{Sender: "a@example.org"}, {Sender: "a@example.net"},
	} {
		h, ok := l.Match(&q)
		wh, wok := fresh.Match(&q)
		if ok != wok || h.Line != wh.Line {
			t.Errorf("%+v: hit %v line %d, the file says %v line %d (stale image?)", q, ok, h.Line, wok, wh.Line)
		}
	}
	return l
}

func (e *cacheEnv) images(t *testing.T) []string {
	t.Helper()
	imgs, err := filepath.Glob(filepath.Join(e.cacheDir, "*.img"))
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func (e *cacheEnv) image(t *testing.T) string {
	t.Helper()
	imgs := e.images(t)
	if len(imgs) != 1 {
		t.Fatalf("cache holds %q, want one image", imgs)
	}
	return imgs[0]
}

func TestCacheWrittenThenUsed(t *testing.T) {
	e := newCacheEnv(t)
	l := e.open(t)
	if l.fromDisk {
		t.Error("first Open claims to come from disk")
	}
	img := e.image(t)
	if !strings.HasSuffix(img, ".img") || len(filepath.Base(img)) != 24+len(".img") {
		t.Errorf("image name %q", img)
	}
	if _, err := os.Stat(img + ".lock"); err != nil {
		t.Errorf("no lock file beside the image: %v", err)
	}
	l = e.open(t)
	if !l.fromDisk {
		t.Errorf("second Open compiled again; debug: %q", *e.debug)
	}
	if l.Name != "block" || l.Path != e.path || l.Reply.Code != 550 {
		t.Errorf("list from cache: %+v", l.Def)
	}
	// Another list file has an image of its own.
	other := writeList(t, e.dir, "other.list", cacheListText)
	if l, err := Open(other, e.o); err != nil || l.fromDisk {
		t.Fatalf("other list: %v, fromDisk %v", err, l != nil && l.fromDisk)
	}
	if n := len(e.images(t)); n != 2 {
		t.Errorf("%d images for two lists", n)
	}
	// Relative and absolute paths of one file share the image.
	t.Chdir(e.dir)
	if l, err := Open("block.list", e.o); err != nil || !l.fromDisk {
		t.Errorf("relative path: %v, fromDisk %v", err, l != nil && l.fromDisk)
	}
}

func TestCacheInvalidatedByTouch(t *testing.T) {
	e := newCacheEnv(t)
	e.open(t)
	if !e.open(t).fromDisk {
		t.Fatal("cache not used")
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(e.path, later, later); err != nil {
		t.Fatal(err)
	}
	settle(t, e.path)
	if e.open(t).fromDisk {
		t.Error("touched list read from the old image")
	}
	if !e.open(t).fromDisk {
		t.Error("image not rewritten after the touch")
	}
}

// rewriteInPlace writes text over the list file, same inode, until its
// modification time differs from before (file systems count time in
// ticks).
func rewriteInPlace(t *testing.T, path, text string) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !after.ModTime().Equal(before.ModTime()) {
			return
		}
		if i == 100 {
			t.Fatal("modification time does not change")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheInvalidatedByEdit(t *testing.T) {
	e := newCacheEnv(t)
	e.open(t)
	// Same size, other content, same inode.
	edited := strings.Replace(cacheListText, "192.0.2.0/24", "192.0.3.0/24", 1)
	rewriteInPlace(t, e.path, edited)
	if l := e.open(t); l.fromDisk {
		t.Error("edited list read from the old image")
	}
	if _, ok := e.open(t).Match(&Query{ClientAddr: "192.0.3.1"}); !ok {
		t.Error("edit not in effect")
	}
	// Other size, written at once.
	if err := os.WriteFile(e.path, []byte(cacheListText+"198.51.100.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.open(t).Match(&Query{ClientAddr: "198.51.100.1"}); !ok {
		t.Error("grown list read from the old image")
	}
	// Replaced by rename, as editors and safe writers do: a new inode.
	tmp := writeList(t, e.dir, ".block.list.new", cacheListText)
	if err := os.Rename(tmp, e.path); err != nil {
		t.Fatal(err)
	}
	if l := e.open(t); l.fromDisk {
		t.Error("replaced list read from the old image")
	}
	if n := len(e.images(t)); n != 1 {
		t.Errorf("%d images left for one list", n)
	}
}

// TestCacheSameTick: a list written again at the same size within one
// step of the file clock keeps its times (Linux before 6.13, whole-second
// file systems), so an image compiled from the text before the second
// write carries the stamp of the file after it. Such an image is one
// compiled too soon after the list changed, and is never used: the list
// is compiled again until it has settled, and once more after.
func TestCacheSameTick(t *testing.T) {
	e := newCacheEnv(t)
	e.open(t)
	// The same list, same size, written again; then an image of the
	// old text stamped with the file as it is now, compiled 1 ms after
	// its change: what the old kernel leaves behind.
	edited := strings.Replace(cacheListText, "192.0.2.0/24", "192.0.3.0/24", 1)
	rewriteInPlace(t, e.path, edited)
	fi, err := os.Stat(e.path)
	if err != nil {
		t.Fatal(err)
	}
	def, entries, err := parse(e.path, strings.NewReader(cacheListText), 0)
	if err != nil {
		t.Fatal(err)
	}
	src := statSource(fi)
	stale := compile(def, entries, src, time.Unix(0, int64(src.ctime)).Add(time.Millisecond))
	if err := os.WriteFile(e.image(t), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l := e.open(t) // checks the answers against the file
		if l.fromDisk {
			t.Fatalf("open %d after the rewrite: image compiled before it used", i+1)
		}
		if _, ok := l.Match(&Query{ClientAddr: "192.0.3.1"}); !ok {
			t.Fatalf("open %d after the rewrite: edit not in effect", i+1)
		}
	}
	if !strings.Contains(strings.Join(*e.debug, "\n"), "too soon to tell its version") {
		t.Errorf("no word of the image compiled too soon; debug: %q", *e.debug)
	}
	// Settled, the list is compiled once more, and that image is kept.
	settle(t, e.path)
	if e.open(t).fromDisk {
		t.Error("image compiled before the list settled used after")
	}
	for range 2 {
		if !e.open(t).fromDisk {
			t.Errorf("image compiled after the list settled not used; debug: %q", *e.debug)
		}
	}
}

func TestCorruptCacheRebuilt(t *testing.T) {
	for name, damage := range map[string]func(img []byte) []byte{
		"garbage":     func([]byte) []byte { return []byte(strings.Repeat("garbage\n", 100)) },
		"empty":       func([]byte) []byte { return nil },
		"truncated":   func(img []byte) []byte { return img[:len(img)/2] },
		"short":       func(img []byte) []byte { return img[:len(img)-1] },
		"header only": func(img []byte) []byte { return img[:headerLen] },
		"longer":      func(img []byte) []byte { return append(img, 0, 0, 0, 0) },
		"bad def": func(img []byte) []byte {
			return []byte(strings.Replace(string(img), "action: block", "action: bloke", 1))
		},
		"other version": func(img []byte) []byte { img[7] = 1; return img },
	} {
		t.Run(name, func(t *testing.T) {
			e := newCacheEnv(t)
			e.open(t)
			path := e.image(t)
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage(img), 0o644); err != nil {
				t.Fatal(err)
			}
			if l := e.open(t); l.fromDisk {
				t.Error("damaged image used")
			}
			if l := e.open(t); !l.fromDisk {
				t.Error("damaged image not rebuilt")
			}
		})
	}
}

func TestCacheForAnotherFileIgnored(t *testing.T) {
	// An image whose source stamp is another file's (say, copied state)
	// is compiled over.
	e := newCacheEnv(t)
	e.open(t)
	other := writeList(t, e.dir, "other.list", "match: sender\naction: allow\n@example.org\n")
	if _, err := Open(other, e.o); err != nil {
		t.Fatal(err)
	}
	imgs := e.images(t)
	a, _ := os.ReadFile(imgs[0])
	b, _ := os.ReadFile(imgs[1])
	os.WriteFile(imgs[0], b, 0o644)
	os.WriteFile(imgs[1], a, 0o644)
	for _, p := range []string{e.path, other} {
		l, err := Open(p, e.o)
		if err != nil {
			t.Fatal(err)
		}
		if l.fromDisk {
			t.Errorf("%s: another list's image used", p)
		}
		if l.Path != p {
			t.Errorf("list path %q, want %q", l.Path, p)
		}
	}
}

func TestUnwritableCacheFallsBack(t *testing.T) {
	e := newCacheEnv(t)
	// The state directory is a file: it cannot be created.
	file := writeList(t, e.dir, "not-a-dir", "")
	o := e.o
	o.CacheDir = filepath.Join(file, "lists")
	for i := 0; i < 2; i++ {
		l, err := Open(e.path, o)
		if err != nil {
			t.Fatalf("Open with an uncreatable cache dir: %v", err)
		}
		if l.fromDisk {
			t.Error("fromDisk without a cache")
		}
		if _, ok := l.Match(&Query{Sender: "a@example.org"}); !ok {
			t.Error("list compiled in memory does not match")
		}
	}
	if len(*e.debug) == 0 {
		t.Error("no debug message says why the cache was not used")
	}

	// The lock file cannot be opened (here a directory stands in its way).
	e = newCacheEnv(t)
	e.open(t)
	img := e.image(t)
	os.Remove(img)
	os.Remove(img + ".lock")
	if err := os.Mkdir(img+".lock", 0o755); err != nil {
		t.Fatal(err)
	}
	if l := e.open(t); l.fromDisk {
		t.Error("fromDisk without a cache")
	}

	// The image cannot be written (a directory stands in its way).
	e = newCacheEnv(t)
	e.open(t)
	img = e.image(t)
	os.Remove(img)
	if err := os.MkdirAll(filepath.Join(img, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if l := e.open(t); l.fromDisk {
			t.Error("fromDisk without a cache")
		}
	}
	if !strings.Contains(strings.Join(*e.debug, "\n"), "not written") {
		t.Errorf("debug %q does not say the image was not written", *e.debug)
	}
}

func TestReadOnlyCacheDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories; covered by TestUnwritableCacheFallsBack")
	}
	e := newCacheEnv(t)
	if err := os.MkdirAll(e.cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(e.cacheDir, 0o555)
	defer os.Chmod(e.cacheDir, 0o755)
	for i := 0; i < 2; i++ {
		if l := e.open(t); l.fromDisk {
			t.Error("fromDisk from a read-only cache dir that holds nothing")
		}
	}
}

func TestNoCacheDir(t *testing.T) {
	e := newCacheEnv(t)
	e.o.CacheDir = ""
	for i := 0; i < 2; i++ {
		if l := e.open(t); l.fromDisk {
			t.Error("fromDisk without a cache dir")
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory made without a cache dir: %v", err)
	}
}

func TestLockTimeout(t *testing.T) {
	e := newCacheEnv(t)
	e.open(t)
	img := e.image(t)
	lock, err := flock.Acquire(img+".lock", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	// A good image is used without the lock, while a compiler holds it.
	if l := e.open(t); !l.fromDisk {
		t.Error("good image not used while the lock is held")
	}
	// An image to be rebuilt waits for the lock, and gives up in time.
	later := time.Now().Add(time.Hour)
	os.Chtimes(e.path, later, later)
	e.o.LockTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err = Open(e.path, e.o)
	if !errors.Is(err, flock.ErrTimeout) {
		t.Errorf("error %v, want a lock timeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

func TestConcurrentOpens(t *testing.T) {
	e := newCacheEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Open(e.path, e.o)
			if err != nil {
				errs <- err
				return
			}
			if _, ok := l.Match(&Query{ClientAddr: "192.0.2.1"}); !ok {
				errs <- errors.New("no match")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(e.images(t)); n != 1 {
		t.Errorf("%d images", n)
	}
	tmps, _ := filepath.Glob(filepath.Join(e.cacheDir, ".*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %q", tmps)
	}
}

// TestMillionEntries: a list of a million addresses and networks, once
// compiled, costs a stage a mapped file and a binary search.
func TestMillionEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and compiles a 15 MB list; skipped under -short")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "million.list")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "match: client-addr\naction: block\n")
	const n = 1_000_000
	// Every tenth entry a /24 of 10.x.y.0; the rest single addresses,
	// some inside those networks, most in 100.64.0.0/10 and beyond.
	for i := 0; i < n; i++ {
		x := uint32(i) * 2654435761 // spread, so the file is not sorted
		switch {
		case i%10 == 0:
			fmt.Fprintf(w, "10.%d.%d.0/24\n", byte(x>>8), byte(x))
		case i%10 == 1:
			fmt.Fprintf(w, "10.%d.%d.%d\n", byte(x>>16), byte(x>>8), byte(x))
		default:
			fmt.Fprintf(w, "%d.%d.%d.%d\n", 100+byte(x>>24)%100, byte(x>>16), byte(x>>8), byte(x))
		}
	}
	fmt.Fprintf(w, "203.0.113.77\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	settle(t, path)
	o := Options{CacheDir: filepath.Join(dir, "cache"), LockTimeout: 10 * time.Second}
	start := time.Now()
	if _, err := Open(path, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("compile of %d entries: %v", n+1, time.Since(start))

	start = time.Now()
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := l.Match(&Query{ClientAddr: "203.0.113.77"})
	took := time.Since(start)
	if !l.fromDisk {
		t.Fatal("second Open compiled again")
	}
	if !ok || h.Line != n+3 {
		t.Fatalf("last entry: hit %v line %d, want line %d", ok, h.Line, n+3)
	}
	t.Logf("cached open + lookup: %v", took)
	if took >= time.Second {
		t.Errorf("cached open + lookup took %v, want well under a second", took)
	}
	if _, ok := l.Match(&Query{ClientAddr: "203.0.113.78"}); ok {
		t.Error("unlisted address matched")
	}
	if l.Len() < n/2 {
		t.Errorf("image holds %d ranges", l.Len())
	}
}

// A cache root makes (mf-lists why run by hand) belongs to the state
// directory's owner, who runs the stages and must be able to replace it.
func TestRootMadeCacheBelongsToTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to create files for another user")
	}
	e := newCacheEnv(t)
	os.Mkdir(filepath.Dir(e.cacheDir), 0o755)
	os.Chown(filepath.Dir(e.cacheDir), 65534, 65534)
	e.open(t)
	des, _ := os.ReadDir(e.cacheDir)
	if len(des) < 2 {
		t.Fatalf("cache holds %v", des)
	}
	for _, p := range append([]string{e.cacheDir}, e.images(t)...) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
			t.Errorf("%s owned by %d", p, st.Uid)
		}
	}
	for _, de := range des {
		fi, _ := de.Info()
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
			t.Errorf("%s owned by %d", de.Name(), st.Uid)
		}
	}
}
