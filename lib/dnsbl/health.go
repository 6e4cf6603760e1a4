package dnsbl

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mf/lib/safeio"
)

// HealthFile remembers for a while what the zones' test entries said,
// between the short-lived processes of one host, so that each message
// does not ask every list twice more: one line "ZONE UNIXMILLI 1|0" per
// zone, replaced whole. A missing or unreadable file only means asking.
type HealthFile struct {
	Path string
	TTL  time.Duration

	mu      sync.Mutex
	known   map[string]health
	changed bool
}

type health struct {
	at time.Time
	ok bool
}

func (h *HealthFile) load() {
	if h.known != nil {
		return
	}
	h.known = map[string]health{}
	b, err := os.ReadFile(h.Path)
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		ms, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || f[2] != "0" && f[2] != "1" {
			continue
		}
		h.known[f[0]] = health{time.UnixMilli(ms), f[2] == "1"}
	}
}

// Get says what the zone's probe said less than TTL ago, if it did.
func (h *HealthFile) Get(z *Zone) (ok, known bool) {
	if h == nil || h.TTL <= 0 {
		return false, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.load()
	e, found := h.known[z.key()]
	if !found || time.Since(e.at) > h.TTL || time.Since(e.at) < 0 {
		return false, false
	}
	return e.ok, true
}

// Put records a probe's answer.
func (h *HealthFile) Put(z *Zone, ok bool) {
	if h == nil || h.TTL <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.load()
	h.known[z.key()] = health{time.Now(), ok}
	h.changed = true
}

// Save writes the file if a probe was made; entries older than TTL go.
func (h *HealthFile) Save() error {
	if h == nil || h.TTL <= 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.changed {
		return nil
	}
	var lines []string
	for k, e := range h.known {
		if time.Since(e.at) <= h.TTL {
			ok := 0
			if e.ok {
				ok = 1
			}
			lines = append(lines, fmt.Sprintf("%s %d %d\n", k, e.at.UnixMilli(), ok))
		}
	}
	sort.Strings(lines)
	if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
		return err
	}
	h.changed = false
	return safeio.WriteFile(h.Path, []byte(strings.Join(lines, "")), 0o644)
}

// key names a zone with what its health depends on.
func (z *Zone) key() string {
	k := z.Kind.String() + ":" + z.Name
	if z.Test != "" {
		k += "/" + z.Test
	}
	if z.Server != "" {
		k += "@" + z.Server
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '_'
		}
		return r
	}, k)
}
